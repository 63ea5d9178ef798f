/*
 * sockrpcd_limits.h - every limit the daemon enforces, with why it has its value.
 * Defaults here; the command line (and, where stated, the policy) may change them.
 */
#ifndef SOCKRPCD_LIMITS_H
#define SOCKRPCD_LIMITS_H

#include "frame.h"

/* Sessions at once: each costs a few KiB plus its handles; 1024 fits the default fd limit
 * once raised and keeps one runaway sandbox from exhausting the daemon. */
#define DEFAULT_MAX_SESSIONS 1024

/* Open handles per session: Blade programs rarely hold more than a few dozen sockets; 1024
 * stops a client from taking every fd of the daemon. */
#define DEFAULT_MAX_HANDLES 1024

/* Bytes a session may have outstanding (requests still being served plus replies not yet
 * read by the client). Past this the daemon stops reading that client until it drains:
 * 16 frames' worth keeps bulk transfers streaming without unbounded buffering. */
#define DEFAULT_MAX_QUEUED_BYTES (16u * SR_MAX_FRAME)

/* Default connect timeout, as Blade's: 300 s. */
#define DEFAULT_CONNECT_TIMEOUT_MS 300000

/* Read(length) with no length reads 1024 bytes, as Blade's. */
#define DEFAULT_READ_LENGTH 1024

/* After EMFILE/ENFILE on accept the listener pauses this long before trying again. */
#define ACCEPT_RETRY_MS 100

/* A client has this long to say Hello; one that connects and says nothing holds a
 * session slot, so it must not hold it for long. The library sends Hello as soon as it
 * has connected, so a few seconds leave room for a loaded machine, and a client that
 * drips its Hello a byte at a time (slowloris) is cut off as soon. */
#define HELLO_TIMEOUT_MS 3000

/* Connections of one uid that have not said Hello yet, at once, once half the session
 * slots are taken (below that, a burst of clients opening at once may take more). Past it,
 * that uid's new connections are closed at accept: one uid cannot fill the session slots
 * (counted at accept, with MAX_SESSIONS_MARGIN) and deny everyone else. A client sends
 * Hello as soon as it connects, so only a burst of connections waits here. */
#define MAX_PRE_HELLO_PER_UID 64

/* Connections beyond max_sessions the daemon still accepts, to tell them at Hello why they
 * are refused; past it they are closed at once. */
#define MAX_SESSIONS_MARGIN 64

/* While a session does not read its connection (too much queued, or closing), nothing
 * watches that connection in the loop (libevent reports an error on it as readable, which
 * would wake the loop for ever); instead this timer looks whether the client hung up. */
#define HANGUP_CHECK_MS 200

/* Memory a request may use while it is unpacked, for a body of len bytes: its message,
 * copies of its strings and bytes (at most len), and protobuf-c's scratch. A request that
 * needs more is refused (a body of 2-byte unknown fields costs ~40 times its size).
 * Unknown fields are then dropped, and the call is charged what its request still holds. */
#define DECODE_BUDGET(len) (2 * (size_t)(len) + 64u * 1024u)

/* After sessions end, free memory is handed back to the kernel (malloc_trim) at most this
 * often: a flood of connections or calls must not leave the daemon's heap at its peak. */
#define TRIM_INTERVAL_MS 1000

/* A session closing after its last replies waits this long for its client to take them. */
#define CLOSE_FLUSH_MS 5000

/* On SIGTERM, how long sessions get to take their final replies before the daemon exits. */
#define SHUTDOWN_FLUSH_MS 500

/* Name lookups (resolve.c). A lookup waits for its turn in its uid's queue, then runs
 * while its session, its uid and the daemon are under their in-flight limits; freed slots
 * go round-robin across uids, so a uid flooding a name server that never answers holds
 * at most its own 16 slots, and another uid's lookup starts at once unless 16 uids flood
 * together (the daemon's 256, which keeps evdns from queueing and the name server from a
 * storm); then the uids take the slots that free in turn, one each. A uid may
 * have 256 lookups waiting; more are refused (ELIMIT). Every lookup ends within
 * DNS_JOB_TIMEOUT_MS of its request, queued or not: resolv.conf's defaults (timeout 5 s,
 * 2 attempts) fit. */
#define DNS_MAX_IN_FLIGHT 256
#define DNS_MAX_IN_FLIGHT_PER_UID 16
#define DNS_MAX_IN_FLIGHT_PER_SESSION 8
#define DNS_MAX_WAITING_PER_UID 256
#define DNS_JOB_TIMEOUT_MS 10000

/* SO_LINGER is emulated on the loop (linger.c). A close waits at most LINGER_MAX_S, well
 * under the client library's 30 s deadline for a call (SR_FIXED_DEADLINE_MS), so a close
 * that waits the whole time is still answered. Lingering sockets hold a daemon fd each:
 * at most MAX_LINGERING_PER_SESSION per session and MAX_LINGERING in all; past either
 * the socket closes at once (the kernel still delivers its data), the call does not wait.
 * Whether the FIN is acknowledged is checked after 1 ms, backing off to 100 ms. */
#define LINGER_MAX_S 20
#define MAX_LINGERING_PER_SESSION 16
#define MAX_LINGERING 256
#define LINGER_POLL_MIN_MS 1
#define LINGER_POLL_MAX_MS 100

/* TLS (tls_listener.c). --listen-tls may be given this many times. */
#define TLS_MAX_LISTENERS 8
/* A TLS handshake must finish within this, or the connection is dropped: a slowloris
 * holds a slot (and a half-built SSL) no longer. Generous for a far client. */
#define TLS_HANDSHAKE_TIMEOUT_MS 5000
/* Handshakes in progress at once; past it the TLS listeners pause and connections wait
 * in the kernel's backlog. Each costs an SSL (~30 KiB) and a key exchange's CPU. */
#define TLS_MAX_HANDSHAKES 64
/* Handshakes one address may have in progress once half of TLS_MAX_HANDSHAKES are
 * taken: a host holding slots with slow handshakes leaves the rest to others. */
#define TLS_MAX_HANDSHAKES_PER_ADDRESS 8
/* A --tls-cert, --tls-key or --tls-client-ca file larger than this is refused. */
#define TLS_PEM_MAX (1u << 20)
/* The client certificate chain's depth at most. */
#define TLS_VERIFY_DEPTH 4
/* The uid and gid the OS sees when it acts for a TLS peer (a brokered AF_UNIX connect):
 * nobody, never the daemon's own. Policy rules on uid= never match a TLS peer. */
#define TLS_PEER_UID 65534

#endif
