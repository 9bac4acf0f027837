/* SPDX-License-Identifier: MIT */
/*
 * codegen/names.c — identifiers that a C11 or POSIX header may define as
 * a macro (see names.h, and SPEC.md for the policy).
 *
 * The lists follow the standards header by header: C11 (ISO/IEC 9899:2011,
 * the library clauses and 7.31, future library directions) and POSIX.1-2017
 * (XBD chapter 13, and XSH 2.2.2, the name space each header reserves).
 * Only object-like macros matter: a field or message name is used bare as
 * a struct member, where an object-like macro of that name would replace
 * it, while a function-like macro needs a '(' after the name, which
 * generated code never writes (the dispatcher calls (h->M)(...)).
 *
 * Where a standard reserves a whole pattern for a header's macros (E and an
 * upper-case letter for <errno.h>, a _MAX suffix for <limits.h>, ...), the
 * pattern is in `patterns`, so that a macro an implementation adds within
 * its rights is covered too. Lower-case prefixes that POSIX reserves for
 * struct members (st_, sa_, d_, n_, ...) are not rejected as a whole: they
 * would take common field names (n_items, d_type) for a rare hazard; the
 * members that implementations are known to define as macros are listed
 * by name instead (glibc's, which POSIX allows: st_atime, sa_handler,
 * si_pid, s6_addr, ...). A macro that no list knows is still caught where
 * it is defined: the generated header checks every bare name with #ifdef.
 */
#include "names.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* struct header_macros is one header and the macros listed for it,
 * separated by blanks. */
struct header_macros {
	const char *header;
	const char *names;
};

static const struct header_macros explicit_macros[] = {
	/* C11 */
	{ "<assert.h>", "static_assert NDEBUG" },
	{ "<complex.h>", "complex imaginary I" },
	{ "<errno.h>",
	    "errno EDOM EILSEQ ERANGE E2BIG EACCES EADDRINUSE EADDRNOTAVAIL "
	    "EAFNOSUPPORT EAGAIN EALREADY EBADF EBADMSG EBUSY ECANCELED "
	    "ECHILD ECONNABORTED ECONNREFUSED ECONNRESET EDEADLK "
	    "EDESTADDRREQ EDQUOT EEXIST EFAULT EFBIG EHOSTUNREACH EIDRM "
	    "EINPROGRESS EINTR EINVAL EIO EISCONN EISDIR ELOOP EMFILE EMLINK "
	    "EMSGSIZE EMULTIHOP ENAMETOOLONG ENETDOWN ENETRESET ENETUNREACH "
	    "ENFILE ENOBUFS ENODATA ENODEV ENOENT ENOEXEC ENOLCK ENOLINK "
	    "ENOMEM ENOMSG ENOPROTOOPT ENOSPC ENOSR ENOSTR ENOSYS ENOTCONN "
	    "ENOTDIR ENOTEMPTY ENOTRECOVERABLE ENOTSOCK ENOTSUP ENOTTY ENXIO "
	    "EOPNOTSUPP EOVERFLOW EOWNERDEAD EPERM EPIPE EPROTO "
	    "EPROTONOSUPPORT EPROTOTYPE EROFS ESPIPE ESRCH ESTALE ETIME "
	    "ETIMEDOUT ETXTBSY EWOULDBLOCK EXDEV" },
	{ "<float.h>", "DECIMAL_DIG" },
	{ "<iso646.h>",
	    "and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq" },
	{ "<limits.h>",
	    "CHAR_BIT SCHAR_MIN SCHAR_MAX UCHAR_MAX CHAR_MIN CHAR_MAX "
	    "MB_LEN_MAX SHRT_MIN SHRT_MAX USHRT_MAX INT_MIN INT_MAX UINT_MAX "
	    "LONG_MIN LONG_MAX ULONG_MAX LLONG_MIN LLONG_MAX ULLONG_MAX "
	    "SSIZE_MAX PAGESIZE PAGE_SIZE NZERO WORD_BIT LONG_BIT MAX_CANON "
	    "MAX_INPUT NAME_MAX PATH_MAX PIPE_BUF IOV_MAX" },
	{ "<math.h>",
	    "HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN MATH_ERRNO "
	    "MATH_ERREXCEPT math_errhandling MAXFLOAT SNAN SNANF SNANL" },
	{ "<stdalign.h>", "alignas alignof" },
	{ "<stdbool.h>", "bool true false" },
	{ "<stddef.h>", "NULL" },
	{ "<stdint.h>",
	    "INT8_MIN INT16_MIN INT32_MIN INT64_MIN INT8_MAX INT16_MAX "
	    "INT32_MAX INT64_MAX UINT8_MAX UINT16_MAX UINT32_MAX UINT64_MAX "
	    "INT_LEAST8_MIN INT_LEAST16_MIN INT_LEAST32_MIN INT_LEAST64_MIN "
	    "INT_LEAST8_MAX INT_LEAST16_MAX INT_LEAST32_MAX INT_LEAST64_MAX "
	    "UINT_LEAST8_MAX UINT_LEAST16_MAX UINT_LEAST32_MAX "
	    "UINT_LEAST64_MAX INT_FAST8_MIN INT_FAST16_MIN INT_FAST32_MIN "
	    "INT_FAST64_MIN INT_FAST8_MAX INT_FAST16_MAX INT_FAST32_MAX "
	    "INT_FAST64_MAX UINT_FAST8_MAX UINT_FAST16_MAX UINT_FAST32_MAX "
	    "UINT_FAST64_MAX INTPTR_MIN INTPTR_MAX UINTPTR_MAX INTMAX_MIN "
	    "INTMAX_MAX UINTMAX_MAX PTRDIFF_MIN PTRDIFF_MAX SIG_ATOMIC_MIN "
	    "SIG_ATOMIC_MAX SIZE_MAX WINT_MIN WINT_MAX INT8_C INT16_C "
	    "INT32_C INT64_C UINT8_C UINT16_C UINT32_C UINT64_C INTMAX_C "
	    "UINTMAX_C" },
	{ "<stdio.h>",
	    "BUFSIZ EOF FILENAME_MAX FOPEN_MAX L_tmpnam L_ctermid L_cuserid "
	    "P_tmpdir SEEK_CUR SEEK_END SEEK_SET SEEK_DATA SEEK_HOLE TMP_MAX "
	    "stderr stdin stdout" },
	{ "<stdlib.h>", "EXIT_FAILURE EXIT_SUCCESS MB_CUR_MAX RAND_MAX" },
	{ "<stdnoreturn.h>", "noreturn" },
	{ "<threads.h>", "thread_local ONCE_FLAG_INIT TSS_DTOR_ITERATIONS" },
	{ "<time.h>", "CLOCKS_PER_SEC TIME_UTC" },
	{ "<wchar.h>", "WEOF WCHAR_MAX WCHAR_MIN" },
	/* POSIX.1-2017 */
	{ "<arpa/inet.h>", "INET_ADDRSTRLEN INET6_ADDRSTRLEN" },
	{ "<cpio.h>",
	    "C_IRUSR C_IWUSR C_IXUSR C_IRGRP C_IWGRP C_IXGRP C_IROTH C_IWOTH "
	    "C_IXOTH C_ISUID C_ISGID C_ISVTX C_ISDIR C_ISFIFO C_ISREG C_ISBLK "
	    "C_ISCHR C_ISCTG C_ISLNK C_ISSOCK MAGIC" },
	{ "<dirent.h>", "d_fileno" },
	{ "<langinfo.h>",
	    "CODESET D_T_FMT D_FMT T_FMT T_FMT_AMPM AM_STR PM_STR DAY_1 DAY_2 "
	    "DAY_3 DAY_4 DAY_5 DAY_6 DAY_7 ABDAY_1 ABDAY_2 ABDAY_3 ABDAY_4 "
	    "ABDAY_5 ABDAY_6 ABDAY_7 MON_1 MON_2 MON_3 MON_4 MON_5 MON_6 "
	    "MON_7 MON_8 MON_9 MON_10 MON_11 MON_12 ABMON_1 ABMON_2 ABMON_3 "
	    "ABMON_4 ABMON_5 ABMON_6 ABMON_7 ABMON_8 ABMON_9 ABMON_10 "
	    "ABMON_11 ABMON_12 ERA ERA_D_FMT ALT_DIGITS ERA_D_T_FMT "
	    "ERA_T_FMT RADIXCHAR THOUSEP YESEXPR NOEXPR CRNCYSTR" },
	{ "<libgen.h>", "basename" },
	{ "<netdb.h>",
	    "IPPORT_RESERVED HOST_NOT_FOUND NO_DATA NO_RECOVERY "
	    "TRY_AGAIN h_errno h_addr" },
	{ "<netinet/in.h>",
	    "IN6ADDR_ANY_INIT IN6ADDR_LOOPBACK_INIT s6_addr s6_addr16 "
	    "s6_addr32" },
	{ "<net/if.h>",
	    "ifr_name ifr_hwaddr ifr_addr ifr_dstaddr ifr_broadaddr "
	    "ifr_netmask ifr_flags ifr_metric ifr_mtu ifr_map ifr_slave "
	    "ifr_data ifr_ifindex ifr_bandwidth ifr_qlen ifr_newname "
	    "ifc_buf ifc_req ifa_broadaddr ifa_dstaddr" },
	{ "<sched.h>", "sched_priority" },
	{ "<signal.h>",
	    "NSIG MINSIGSTKSZ SIGSTKSZ sa_handler sa_sigaction si_pid si_uid "
	    "si_timerid si_overrun "
	    "si_status si_utime si_stime si_value si_int si_ptr si_addr "
	    "si_addr_lsb si_lower si_upper si_pkey si_band si_fd "
	    "si_call_addr si_syscall si_arch sigev_notify_function "
	    "sigev_notify_attributes" },
	{ "<sys/msg.h>", "msg_cbytes" },
	{ "<sys/sem.h>",
	    "GETNCNT GETPID GETVAL GETALL GETZCNT SETVAL SETALL" },
	{ "<sys/shm.h>", "SHMLBA" },
	{ "<sys/socket.h>", "SOMAXCONN" },
	{ "<sys/stat.h>", "st_atime st_ctime st_mtime" },
	{ "<sys/uio.h>", "UIO_MAXIOV" },
	{ "<sys/wait.h>", "P_ALL P_PGID P_PID" },
	{ "<tar.h>",
	    "TMAGIC TMAGLEN TVERSION TVERSLEN REGTYPE AREGTYPE LNKTYPE "
	    "SYMTYPE CHRTYPE BLKTYPE DIRTYPE FIFOTYPE CONTTYPE TSUID TSGID "
	    "TSVTX TUREAD TUWRITE TUEXEC TGREAD TGWRITE TGEXEC TOREAD "
	    "TOWRITE TOEXEC" },
	{ "<termios.h>",
	    "NCCS VEOF VEOL VERASE VINTR VKILL VMIN VQUIT VSTART VSTOP VSUSP "
	    "VTIME BRKINT ICRNL IGNBRK IGNCR IGNPAR INLCR INPCK ISTRIP IXANY "
	    "IXOFF IXON PARMRK OPOST ONLCR OCRNL ONOCR ONLRET OFDEL OFILL "
	    "NLDLY NL0 NL1 CRDLY CR0 CR1 CR2 CR3 TABDLY TAB0 TAB1 TAB2 TAB3 "
	    "BSDLY BS0 BS1 VTDLY VT0 VT1 FFDLY FF0 FF1 CSIZE CS5 CS6 CS7 CS8 "
	    "CSTOPB CREAD PARENB PARODD HUPCL CLOCAL ECHO ECHOE ECHOK ECHONL "
	    "ICANON IEXTEN ISIG NOFLSH TOSTOP IMAXBEL IUCLC IUTF8 OLCUC "
	    "VDISCARD VEOL2 VLNEXT VREPRINT VSWTC VWERASE" },
	{ "<ulimit.h>", "UL_GETFSIZE UL_SETFSIZE" },
	{ "<unistd.h>",
	    "F_OK R_OK W_OK X_OK STDIN_FILENO STDOUT_FILENO "
	    "STDERR_FILENO" },
	{ "<utmpx.h>",
	    "EMPTY BOOT_TIME OLD_TIME NEW_TIME USER_PROCESS "
	    "INIT_PROCESS LOGIN_PROCESS DEAD_PROCESS" },
	/* POSIX.1-2024's <endian.h>, which glibc's <stdlib.h> includes
	 * in gcc's default mode. */
	{ "<endian.h>", "BYTE_ORDER LITTLE_ENDIAN BIG_ENDIAN PDP_ENDIAN" },
	{ "<sys/select.h>", "NFDBITS" },
	/* What glibc adds in gcc's default mode (-std=gnu11, which turns on
	 * _DEFAULT_SOURCE) to the headers above, beyond the patterns below:
	 * the platform butler targets. */
	{ "<termios.h> (glibc)",
	    "CBAUD CBAUDEX CBRK CDISCARD CDSUSP CEOF CEOL CEOT CERASE CFLUSH "
	    "CIBAUD CINTR CKILL CLNEXT CMIN CMSPAR CQUIT CREPRINT CRPRNT "
	    "CRTSCTS CSTART CSTATUS CSTOP CSUSP CTIME CWERASE PENDIN XCASE "
	    "XTABS TIOCSER_TEMT" },
	{ "<sys/stat.h> (glibc)", "ACCESSPERMS ALLPERMS DEFFILEMODE" },
	{ "<fcntl.h> (glibc)",
	    "FAPPEND FASYNC FFSYNC FNDELAY FNONBLOCK L_INCR L_SET L_XTND" },
	{ "<dirent.h> (glibc)", "MAXNAMLEN" },
	{ "<net/if.h> (glibc)", "IFHWADDRLEN IFNAMSIZ" },
	{ "<netdb.h> (glibc)", "NETDB_INTERNAL NETDB_SUCCESS NO_ADDRESS" },
	{ "<signal.h> (glibc)", "NGREG" },
	{ "<sys/socket.h> (glibc)", "FIOGETOWN FIOSETOWN" },
	{ "<sys/utsname.h> (glibc)", "SYS_NMLN" },
	/* ... and with _GNU_SOURCE, which programs on glibc often define
	 * (butler's own tests do). */
	{ "<langinfo.h> (glibc, _GNU_SOURCE)",
	    "CURRENCY_SYMBOL DECIMAL_POINT FRAC_DIGITS GROUPING "
	    "INT_CURR_SYMBOL INT_FRAC_DIGITS INT_N_CS_PRECEDES "
	    "INT_N_SEP_BY_SPACE INT_N_SIGN_POSN INT_P_CS_PRECEDES "
	    "INT_P_SEP_BY_SPACE INT_P_SIGN_POSN MON_DECIMAL_POINT "
	    "MON_GROUPING MON_THOUSANDS_SEP NEGATIVE_SIGN N_CS_PRECEDES "
	    "N_SEP_BY_SPACE N_SIGN_POSN P_CS_PRECEDES P_SEP_BY_SPACE "
	    "P_SIGN_POSN POSITIVE_SIGN THOUSANDS_SEP NOSTR YESSTR" },
	{ "<sched.h> (glibc, _GNU_SOURCE)", "CPU_SETSIZE CSIGNAL" },
	{ "<fcntl.h> (glibc, _GNU_SOURCE)", "MAX_HANDLE_SZ" },
	{ "<sys/mman.h> (glibc, _GNU_SOURCE)", "MLOCK_ONFAULT" },
	{ "<sys/resource.h> (glibc, _GNU_SOURCE)", "RLIM64_INFINITY" },
	{ "<netdb.h> (glibc, _GNU_SOURCE)", "SCOPE_DELIMITER" },
	{ "<utmpx.h> (glibc, _GNU_SOURCE)",
	    "ACCOUNTING RUN_LVL UTMPX_FILE UTMPX_FILENAME" },
};

/*
 * struct pattern is a family of macro names a header reserves: names that
 * start with `prefix` (then, when `next` is set, one character of it), or,
 * with `suffix`, end with it (and, with `prefix`, also start so).
 */
struct pattern {
	const char *prefix;
	const char *next; /* class of the character after prefix, or NULL */
	const char *suffix;
	const char *header;
	const char *what; /* the pattern in words; NULL: a plain prefix or
	                     suffix, which says it itself */
};

#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT "0123456789"
#define LOWER "abcdefghijklmnopqrstuvwxyz"

static const struct pattern patterns[] = {
	{ "BUTLER_", NULL, NULL, "<butler/butler.h>",
	    "the BUTLER_ prefix of butler's own macros" },
	{ "E", DIGIT UPPER, NULL, "<errno.h>",
	    "E and a digit or an upper-case letter" },
	{ NULL, NULL, "_MAX", "<limits.h>", NULL },
	{ NULL, NULL, "_MIN", "<limits.h>", NULL },
	{ "INT", NULL, "_C", "<stdint.h>", "INT with the _C suffix" },
	{ "UINT", NULL, "_C", "<stdint.h>", "UINT with the _C suffix" },
	{ "PRI", LOWER "X", NULL, "<inttypes.h>",
	    "PRI and a lower-case letter or X" },
	{ "SCN", LOWER "X", NULL, "<inttypes.h>",
	    "SCN and a lower-case letter or X" },
	{ "SIG_", UPPER, NULL, "<signal.h>", "SIG_ and an upper-case letter" },
	{ "SIG", UPPER, NULL, "<signal.h>", "SIG and an upper-case letter" },
	{ "SA_", NULL, NULL, "<signal.h>", NULL },
	{ "SI_", NULL, NULL, "<signal.h>", NULL },
	{ "SS_", NULL, NULL, "<signal.h>", NULL },
	{ "SV_", NULL, NULL, "<signal.h>", NULL },
	{ "BUS_", NULL, NULL, "<signal.h>", NULL },
	{ "CLD_", NULL, NULL, "<signal.h>", NULL },
	{ "FPE_", NULL, NULL, "<signal.h>", NULL },
	{ "ILL_", NULL, NULL, "<signal.h>", NULL },
	{ "SEGV_", NULL, NULL, "<signal.h>", NULL },
	{ "TRAP_", NULL, NULL, "<signal.h>", NULL },
	{ "LC_", UPPER, NULL, "<locale.h>", "LC_ and an upper-case letter" },
	{ "FE_", UPPER, NULL, "<fenv.h>", "FE_ and an upper-case letter" },
	{ "FP_", UPPER, NULL, "<math.h>", "FP_ and an upper-case letter" },
	{ "M_", NULL, NULL, "<math.h>", NULL },
	{ "FLT_", NULL, NULL, "<float.h>", NULL },
	{ "DBL_", NULL, NULL, "<float.h>", NULL },
	{ "LDBL_", NULL, NULL, "<float.h>", NULL },
	{ "ATOMIC_", UPPER, NULL, "<stdatomic.h>",
	    "ATOMIC_ and an upper-case letter" },
	{ "atomic_", LOWER, NULL, "<stdatomic.h>",
	    "atomic_ and a lower-case letter: its generic functions may be "
	    "macros" },
	{ "TIME_", UPPER, NULL, "<time.h>", "TIME_ and an upper-case letter" },
	{ "CLOCK_", NULL, NULL, "<time.h>", NULL },
	{ "TIMER_", NULL, NULL, "<time.h>", NULL },
	{ "AIO_", NULL, NULL, "<aio.h>", NULL },
	{ "LIO_", NULL, NULL, "<aio.h>", NULL },
	{ "RTLD_", NULL, NULL, "<dlfcn.h>", NULL },
	{ "AT_", NULL, NULL, "<fcntl.h>", NULL },
	{ "F_", NULL, NULL, "<fcntl.h>", NULL },
	{ "O_", NULL, NULL, "<fcntl.h>", NULL },
	{ "S_", NULL, NULL, "<fcntl.h> and <sys/stat.h>", NULL },
	{ "FD_", NULL, NULL, "<fcntl.h> and <sys/select.h>", NULL },
	{ "POSIX_", NULL, NULL, "<fcntl.h>, <spawn.h> and others", NULL },
	{ "MM_", NULL, NULL, "<fmtmsg.h>", NULL },
	{ "FNM_", NULL, NULL, "<fnmatch.h>", NULL },
	{ "FTW_", NULL, NULL, "<ftw.h>", NULL },
	{ "GLOB_", NULL, NULL, "<glob.h>", NULL },
	{ "DBM_", NULL, NULL, "<ndbm.h>", NULL },
	{ "IF_", NULL, NULL, "<net/if.h>", NULL },
	{ "AI_", NULL, NULL, "<netdb.h>", NULL },
	{ "NI_", NULL, NULL, "<netdb.h>", NULL },
	{ "IN_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "IN6_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "INADDR_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "IP_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "IPPORT_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "IPPROTO_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "IPV6_", NULL, NULL, "<netinet/in.h>", NULL },
	{ "TCP_", NULL, NULL, "<netinet/tcp.h>", NULL },
	{ "NL_", NULL, NULL, "<nl_types.h>", NULL },
	{ "POLL", NULL, NULL, "<poll.h>", NULL },
	{ "PTHREAD_", NULL, NULL, "<pthread.h>", NULL },
	{ "REG_", NULL, NULL, "<regex.h>", NULL },
	{ "SCHED_", NULL, NULL, "<sched.h>", NULL },
	{ "SEM_", NULL, NULL, "<semaphore.h> and <sys/sem.h>", NULL },
	{ "I_", NULL, NULL, "<stropts.h>", NULL },
	{ "RS_", NULL, NULL, "<stropts.h>", NULL },
	{ "FLUSH", NULL, NULL, "<stropts.h>", NULL },
	{ "IPC_", NULL, NULL, "<sys/ipc.h>", NULL },
	{ "MAP_", NULL, NULL, "<sys/mman.h>", NULL },
	{ "MCL_", NULL, NULL, "<sys/mman.h>", NULL },
	{ "MS_", NULL, NULL, "<sys/mman.h>", NULL },
	{ "PROT_", NULL, NULL, "<sys/mman.h>", NULL },
	{ "MSG_", NULL, NULL, "<sys/msg.h> and <sys/socket.h>", NULL },
	{ "PRIO_", NULL, NULL, "<sys/resource.h>", NULL },
	{ "RLIM_", NULL, NULL, "<sys/resource.h>", NULL },
	{ "RLIMIT_", NULL, NULL, "<sys/resource.h>", NULL },
	{ "RUSAGE_", NULL, NULL, "<sys/resource.h>", NULL },
	{ "SHM_", NULL, NULL, "<sys/shm.h>", NULL },
	{ "AF_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "PF_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "SO_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "SOCK_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "SOL_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "SCM_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "SHUT_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "CMSG_", NULL, NULL, "<sys/socket.h>", NULL },
	{ "UTIME_", NULL, NULL, "<sys/stat.h>", NULL },
	{ "ST_", NULL, NULL, "<sys/statvfs.h>", NULL },
	{ "ITIMER_", NULL, NULL, "<sys/time.h>", NULL },
	{ "W", UPPER, NULL, "<sys/wait.h>", "W and an upper-case letter" },
	{ "LOG_", NULL, NULL, "<syslog.h>", NULL },
	{ "TC", UPPER, NULL, "<termios.h>", "TC and an upper-case letter" },
	{ "B", DIGIT, NULL, "<termios.h>", "B and a digit" },
	/* C23 <limits.h> and <stdint.h> */
	{ NULL, NULL, "_WIDTH", "<limits.h> and <stdint.h>", NULL },
	/* POSIX.1-2024 <dirent.h> */
	{ "DT_", NULL, NULL, "<dirent.h>", NULL },
	/* glibc's additions in gcc's default mode (see above) */
	{ "IFF_", NULL, NULL, "<net/if.h> (glibc)", NULL },
	{ "LOCK_", NULL, NULL, "<fcntl.h> (glibc)", NULL },
	{ "MADV_", NULL, NULL, "<sys/mman.h> (glibc)", NULL },
	{ "MCAST_", NULL, NULL, "<netinet/in.h> (glibc)", NULL },
	{ "NSS_", NULL, NULL, "<grp.h> and <pwd.h> (glibc)", NULL },
	{ "SIOC", NULL, NULL, "<sys/socket.h> (glibc)", NULL },
	{ "TH_", NULL, NULL, "<netinet/tcp.h> (glibc)", NULL },
	{ "TTYDEF_", NULL, NULL, "<termios.h> (glibc)", NULL },
	/* C23 <math.h> and ISO/IEC TS 18661-3 */
	{ "SNANF", NULL, NULL, "<math.h>", NULL },
	{ "HUGE_VAL_F", NULL, NULL, "<math.h>", NULL },
	/* glibc with _GNU_SOURCE */
	{ "ADJ_", NULL, NULL, "<sys/timex.h> (glibc, _GNU_SOURCE)", NULL },
	{ "MOD_", NULL, NULL, "<sys/timex.h> (glibc, _GNU_SOURCE)", NULL },
	{ "STA_", NULL, NULL, "<sys/timex.h> (glibc, _GNU_SOURCE)", NULL },
	{ "ALTMON_", NULL, NULL, "<langinfo.h> (glibc, _GNU_SOURCE)", NULL },
	{ "CLONE_", NULL, NULL, "<sched.h> (glibc, _GNU_SOURCE)", NULL },
	{ "CLOSE_RANGE_", NULL, NULL, "<unistd.h> (glibc, _GNU_SOURCE)",
	    NULL },
	{ "DLFO_", NULL, NULL, "<dlfcn.h> (glibc, _GNU_SOURCE)", NULL },
	{ "LM_ID_", NULL, NULL, "<dlfcn.h> (glibc, _GNU_SOURCE)", NULL },
	{ "DN_", NULL, NULL, "<fcntl.h> (glibc, _GNU_SOURCE)", NULL },
	{ "FALLOC_FL_", NULL, NULL, "<fcntl.h> (glibc, _GNU_SOURCE)", NULL },
	{ "RWF_", NULL, NULL, "<fcntl.h> (glibc, _GNU_SOURCE)", NULL },
	{ "RWH_", NULL, NULL, "<fcntl.h> (glibc, _GNU_SOURCE)", NULL },
	{ "SPLICE_F_", NULL, NULL, "<fcntl.h> (glibc, _GNU_SOURCE)", NULL },
	{ "SYNC_FILE_RANGE_", NULL, NULL, "<fcntl.h> (glibc, _GNU_SOURCE)",
	    NULL },
	{ "STATX_", NULL, NULL, "<sys/stat.h> (glibc, _GNU_SOURCE)", NULL },
	{ "GAI_", NULL, NULL, "<netdb.h> (glibc, _GNU_SOURCE)", NULL },
	{ "MFD_", NULL, NULL, "<sys/mman.h> (glibc, _GNU_SOURCE)", NULL },
	{ "MREMAP_", NULL, NULL, "<sys/mman.h> (glibc, _GNU_SOURCE)", NULL },
	{ "PKEY_", NULL, NULL, "<sys/mman.h> (glibc, _GNU_SOURCE)", NULL },
	{ "RE_", NULL, NULL, "<regex.h> (glibc, _GNU_SOURCE)", NULL },
	{ "REGS_", NULL, NULL, "<regex.h> (glibc, _GNU_SOURCE)", NULL },
	{ "RENAME_", NULL, NULL, "<stdio.h> (glibc, _GNU_SOURCE)", NULL },
};

/* gnu_words are the macros gcc predefines outside the reserved name space
 * in its default mode (-std=gnu11) on the systems it targets. */
static const char gnu_words[]
    = "linux unix i386 i486 i586 i686 sun sparc mips vax hppa m68k "
      "mc68000";

/* in_words says whether `name` is one of the blank-separated `words`. */
static bool
in_words(const char *words, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = words; (p = strstr(p, name)) != NULL; p += n)
		if ((p == words || p[-1] == ' ')
		    && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

static bool
matches(const struct pattern *pt, const char *name)
{
	size_t n = strlen(name);

	if (pt->prefix != NULL) {
		size_t k = strlen(pt->prefix);

		if (strncmp(name, pt->prefix, k) != 0)
			return false;
		if (pt->next != NULL
		    && (name[k] == '\0' || strchr(pt->next, name[k]) == NULL))
			return false;
		if (pt->suffix == NULL)
			return true;
		/* INT..._C: the suffix after the prefix, not overlapping. */
		if (n < k + strlen(pt->suffix))
			return false;
	}
	return n >= strlen(pt->suffix)
	    && strcmp(name + n - strlen(pt->suffix), pt->suffix) == 0;
}

bool
butler__gen_macro_name(const char *name, char *why, size_t size)
{
	/* The lists are short enough to scan, and most names start with a
	 * lower-case letter that few of them share. */
	for (size_t i = 0;
	     i < sizeof explicit_macros / sizeof *explicit_macros; i++)
		if (in_words(explicit_macros[i].names, name)) {
			snprintf(why, size, "is a macro in %s",
			    explicit_macros[i].header);
			return true;
		}
	if (strcmp(name, "asm") == 0) {
		snprintf(why, size,
		    "is a keyword in gcc's default mode (-std=gnu11)");
		return true;
	}
	if (in_words(gnu_words, name)) {
		snprintf(why, size,
		    "is a macro gcc predefines in its default mode "
		    "(-std=gnu11)");
		return true;
	}
	for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++)
		if (matches(&patterns[i], name)) {
			const struct pattern *pt = &patterns[i];

			if (pt->what != NULL)
				snprintf(why, size,
				    "is reserved for macros of %s (%s)",
				    pt->header, pt->what);
			else
				snprintf(why, size,
				    "is reserved for macros of %s (names %s "
				    "%s)",
				    pt->header,
				    pt->prefix ? "starting with" : "ending in",
				    pt->prefix ? pt->prefix : pt->suffix);
			return true;
		}
	return false;
}
