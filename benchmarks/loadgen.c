/* The compiled load generator: what benchmarks/loadgen.py does, without its per-message cost.
 *
 *   cc -O2 -o loadgen benchmarks/loadgen.c      (run.py builds it on demand; so does `make bench`)
 *   loadgen --port PORT [--pid PID] [--scenarios rtt,pipelined,...] [--runs 3] [--seconds 1]
 *           [--in-flight 100] [--conns 100] [--idle 2000] [--bcast 1000] [--core 1]
 *
 * Same scenarios, same counts and the same JSON line on stdout as loadgen.py
 * ({"loop": ..., "results": {scenario: [figure per run]}, "cpu": {scenario: [server CPU µs per
 * message per run]}}), so run.py uses either. One thread, non-blocking sockets, epoll (level
 * triggered). Every frame is built and masked once at start-up; a batch of k frames is one
 * writev() of slices of a block of pre-built copies, never a copy per message. What comes back is
 * only framed: payloads are skipped (a 1 MiB message is counted through, never buffered), and a
 * read that completes k messages is answered with k new ones in one write. No permessage-deflate
 * (run.py keeps loadgen.py for that table). The 64-byte text is common.TEXT; the 1 MiB binary is
 * pseudo-random letters and spaces (its bytes matter to no server when nothing is compressed).
 * Every wait is bounded: a wait that times out ends the program with status 1 and a message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 30.0                /* any single wait gives up after this long */
#define MAX_MESSAGES 20000000L     /* upper bound on the messages of one run */
#define MAX_IOV 64
#define HEAD_MAX 8192
#define BLOB_SIZE ((size_t)1 << 20)
#define CONTROL_PATH "/control"
static const char TEXT[] = "{\"type\":\"tick\",\"seq\":1048576,\"price\":101.25,\"qty\":3,\"side\":\"buy\"}";
static const unsigned char KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

enum { S_FREE, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSED };

/* A pre-built frame, `reps` copies back to back, so that k frames go out as one slice. */
typedef struct {
    unsigned char *rep;
    size_t len;
    int reps;
} frame_t;

typedef struct conn {
    int fd, state, control, close_received, want_out;
    char head[HEAD_MAX];
    size_t headlen;
    unsigned char hdr[14]; /* an incomplete frame header */
    size_t hdrlen;
    uint64_t skip; /* bytes of the current frame still to come */
    int skip_counts;
    const char *once; /* the opening request or a close frame, sent before any frame */
    size_t once_len, once_off;
    const frame_t *frame; /* then `copies` of this frame, `off` bytes of the first already sent */
    uint64_t copies;
    size_t off;
    long outstanding; /* messages sent whose echo has not arrived */
} conn;

static int epfd, port, server_pid;
static long clk_tck;
static frame_t f_small, f_big, f_trigger;
static char *req_echo, *req_control;
static unsigned char close_frame[8];
static unsigned char rbuf[1 << 18];
static void (*on_messages)(conn *c, long k);
static void (*on_open)(conn *c);
static void (*on_closed)(conn *c);

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The server's CPU time (user + system, all threads) in µs; NAN without --pid. */
static double server_cpu_us(void) {
    char path[64], buf[2048];
    if (!server_pid) return NAN;
    snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return NAN;
    return (double)(utime + stime) * 1e6 / (double)clk_tck;
}

static long rss_kib(void) {
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", server_pid);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    fclose(f);
    if (kib < 0) die("no VmRSS for pid %d", server_pid);
    return kib;
}

static void frame_build(frame_t *fr, int opcode, const unsigned char *payload, size_t n, int reps) {
    unsigned char h[14];
    size_t hl = 2;
    h[0] = 0x80 | opcode;
    if (n < 126) {
        h[1] = 0x80 | n;
    } else if (n < 65536) {
        h[1] = 0x80 | 126, h[2] = n >> 8, h[3] = n & 0xff, hl = 4;
    } else {
        h[1] = 0x80 | 127, hl = 10;
        for (int i = 0; i < 8; i++) h[2 + i] = (n >> (56 - 8 * i)) & 0xff;
    }
    fr->len = hl + 4 + n;
    fr->reps = reps;
    fr->rep = malloc(fr->len * reps);
    if (!fr->rep) die("out of memory");
    memcpy(fr->rep, h, hl);
    memcpy(fr->rep + hl, KEY, 4);
    for (size_t i = 0; i < n; i++) fr->rep[hl + 4 + i] = payload[i] ^ KEY[i & 3];
    for (int r = 1; r < reps; r++) memcpy(fr->rep + r * fr->len, fr->rep, fr->len);
}

static char *request(const char *path) {
    unsigned char raw[16];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0; i < 16; i++) raw[i] = rand() & 0xff;
    for (int i = 0, j = 0; i < 15; i += 3, j += 4) { /* 16 bytes: 5 groups of 3, then 1 byte */
        unsigned v = raw[i] << 16 | raw[i + 1] << 8 | raw[i + 2];
        key[j] = b64[v >> 18], key[j + 1] = b64[(v >> 12) & 63], key[j + 2] = b64[(v >> 6) & 63];
        key[j + 3] = b64[v & 63];
    }
    key[20] = b64[raw[15] >> 2], key[21] = b64[(raw[15] & 3) << 4], key[22] = '=', key[23] = '=';
    key[24] = 0;
    char *out = malloc(512);
    snprintf(out, 512,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
             path, key);
    return out;
}

static void set_out(conn *c, int on) {
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void conn_close(conn *c) {
    if (c->state == S_CLOSED || c->state == S_FREE) return;
    close(c->fd);
    c->state = S_CLOSED;
    if (on_closed) on_closed(c);
}

/* Writes what is queued (the once-buffer, then the frame copies) until done or EAGAIN. */
static void flush(conn *c) {
    while (c->state >= S_HANDSHAKE && c->state != S_CLOSED) {
        struct iovec iov[MAX_IOV];
        int cnt = 0;
        if (c->once_off < c->once_len)
            iov[cnt++] = (struct iovec){(void *)(c->once + c->once_off), c->once_len - c->once_off};
        uint64_t left = c->copies;
        size_t off = c->off;
        while (left && cnt < MAX_IOV) {
            uint64_t k = left < (uint64_t)c->frame->reps ? left : (uint64_t)c->frame->reps;
            iov[cnt++] = (struct iovec){c->frame->rep + off, k * c->frame->len - off};
            left -= k, off = 0;
        }
        if (!cnt) {
            set_out(c, 0);
            return;
        }
        ssize_t w = writev(c->fd, iov, cnt);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) set_out(c, 1);
            else if (errno != EINTR) conn_close(c); /* reset by the server: the read side says why */
            return;
        }
        size_t once_left = c->once_len - c->once_off, take = (size_t)w < once_left ? (size_t)w : once_left;
        c->once_off += take;
        w -= take;
        if (w) {
            size_t total = c->off + w;
            c->copies -= total / c->frame->len;
            c->off = total % c->frame->len;
        }
    }
}

static void send_frames(conn *c, const frame_t *fr, long k) {
    if (c->copies && c->frame != fr) die("two kinds of frame queued on one connection");
    c->frame = fr;
    c->copies += k;
    c->outstanding += k;
    flush(c);
}

static void send_once(conn *c, const void *data, size_t len) {
    c->once = data, c->once_len = len, c->once_off = 0;
    flush(c);
}

static size_t header_size(const unsigned char *h) {
    size_t len = h[1] & 0x7f, hs = len < 126 ? 2 : len == 126 ? 4 : 10;
    return hs + (h[1] & 0x80 ? 4 : 0);
}

static uint64_t payload_len(const unsigned char *h) {
    uint64_t len = h[1] & 0x7f;
    if (len == 126) return (uint64_t)h[2] << 8 | h[3];
    if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
    }
    return len;
}

/* Finds frame boundaries; counts the messages that end here (FIN with opcode 0, 1 or 2). */
static void frames_received(conn *c, const unsigned char *data, size_t n) {
    size_t pos = 0;
    long done = 0;
    if (c->skip) {
        if (c->skip > n) {
            c->skip -= n;
            return;
        }
        pos = c->skip, c->skip = 0, done += c->skip_counts;
    }
    for (;;) {
        const unsigned char *h;
        size_t hs;
        if (c->hdrlen) { /* complete the header kept from the last read */
            while (pos < n && (c->hdrlen < 2 || c->hdrlen < header_size(c->hdr)))
                c->hdr[c->hdrlen++] = data[pos++];
            if (c->hdrlen < 2 || c->hdrlen < header_size(c->hdr)) break;
            h = c->hdr, hs = 0, c->hdrlen = 0;
        } else {
            if (n - pos < 2 || n - pos < header_size(data + pos)) {
                memcpy(c->hdr, data + pos, n - pos);
                c->hdrlen = n - pos;
                break;
            }
            h = data + pos, hs = header_size(h);
        }
        int counts = (h[0] & 0x80) && (h[0] & 0x0f) < 3;
        if ((h[0] & 0x0f) == 8) c->close_received = 1;
        uint64_t len = payload_len(h);
        pos += hs;
        if (len > n - pos) {
            c->skip = len - (n - pos), c->skip_counts = counts;
            break;
        }
        pos += len, done += counts;
    }
    if (done) {
        c->outstanding -= done;
        if (on_messages) on_messages(c, done);
    }
}

static void opening_received(conn *c, const unsigned char *data, size_t n) {
    if (c->headlen + n > HEAD_MAX) die("response head too long");
    memcpy(c->head + c->headlen, data, n);
    c->headlen += n;
    char *end = memmem(c->head, c->headlen, "\r\n\r\n", 4);
    if (!end) return;
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) die("handshake refused: %.40s", c->head);
    c->state = S_OPEN;
    if (on_open) on_open(c);
    size_t used = end + 4 - c->head;
    if (c->headlen > used && c->state == S_OPEN)
        frames_received(c, (unsigned char *)end + 4, c->headlen - used);
}

static void readable(conn *c) {
    for (;;) {
        ssize_t n = read(c->fd, rbuf, sizeof rbuf);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (n <= 0) {
            if (c->state != S_OPEN) die("closed during the opening handshake");
            conn_close(c);
            return;
        }
        if (c->state == S_HANDSHAKE) opening_received(c, rbuf, n);
        else frames_received(c, rbuf, n);
        if (c->state != S_OPEN || (size_t)n < sizeof rbuf) return;
    }
}

static void writable(conn *c) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) die("connect: %s", strerror(err));
        c->state = S_HANDSHAKE;
    }
    flush(c);
}

static void poll_once(double timeout) {
    struct epoll_event ev[512];
    int ms = timeout <= 0 ? 0 : (int)(timeout * 1000) + 1;
    int n = epoll_wait(epfd, ev, 512, ms > 10 ? 10 : ms);
    for (int i = 0; i < n; i++) {
        conn *c = ev[i].data.ptr;
        if (c->state == S_CLOSED || c->state == S_FREE) continue; /* closed earlier in this batch */
        if (ev[i].events & EPOLLOUT) writable(c);
        int open = c->state != S_CLOSED && c->state != S_FREE && c->state != S_CONNECTING;
        if (open && ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) readable(c);
    }
}

/* Runs the loop until done() or `timeout` s; returns whether done() became true. */
static int run_until(int (*done)(void), double timeout) {
    double deadline = now() + timeout;
    while (!done()) {
        double left = deadline - now();
        if (left <= 0) return 0;
        poll_once(left);
    }
    return 1;
}

static void conn_start(conn *c, const char *req) {
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    c->state = S_CONNECTING;
    c->control = req == req_control;
    c->once = req, c->once_len = strlen(req);
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
}

static conn *batch_conns;
static int batch_n;
static int batch_open(void) {
    for (int i = 0; i < batch_n; i++)
        if (batch_conns[i].state != S_OPEN) return 0;
    return 1;
}

/* Opens n connections, 100 at a time (as loadgen.py's connect_many). */
static conn *connect_many(int n, const char *req) {
    conn *conns = calloc(n ? n : 1, sizeof *conns);
    if (!conns) die("out of memory");
    void (*saved)(conn *, long) = on_messages;
    on_messages = NULL;
    for (int i = 0; i < n; i += 100) {
        batch_conns = conns + i, batch_n = n - i < 100 ? n - i : 100;
        for (int j = 0; j < batch_n; j++) conn_start(&batch_conns[j], req);
        if (!run_until(batch_open, WAIT_S)) die("timed out opening connections");
    }
    on_messages = saved;
    return conns;
}

static int all_closed(void) {
    for (int i = 0; i < batch_n; i++)
        if (batch_conns[i].state != S_CLOSED) return 0;
    return 1;
}

/* Closing handshake on every connection (bounded), then close whatever is still open. */
static void close_all(conn *conns, int n) {
    on_messages = NULL, on_closed = NULL;
    for (int i = 0; i < n; i++) {
        conn *c = &conns[i];
        if (c->state != S_OPEN) continue;
        if (c->copies || c->once_off < c->once_len) conn_close(c); /* a close frame now would cut a frame */
        else send_once(c, close_frame, sizeof close_frame);
    }
    batch_conns = conns, batch_n = n;
    run_until(all_closed, 5);
    for (int i = 0; i < n; i++) conn_close(&conns[i]);
    free(conns);
    struct timespec pause = {0, (long)((0.01 + n / 20000.0) * 1e9)};
    nanosleep(&pause, NULL); /* the server cleans up before what comes next */
}

static void idle_for(double seconds) {
    double deadline = now() + seconds;
    while (now() < deadline) poll_once(deadline - now());
}

/* ---- echo scenarios: every connection keeps `in_flight` messages outstanding ---- */
static struct {
    const frame_t *frame;
    long total;
    double start, stop_at, end, cpu_end;
    int finished;
} echo;

static void echo_messages(conn *c, long k) {
    echo.total += k;
    double t = now();
    if (!echo.finished && t < echo.stop_at && echo.total < MAX_MESSAGES) {
        send_frames(c, echo.frame, k);
    } else if (!echo.finished) {
        echo.finished = 1, echo.end = t, echo.cpu_end = server_cpu_us();
    }
}

static int echo_done(void) { return echo.finished; }
static int drained(void) {
    for (int i = 0; i < batch_n; i++)
        if (batch_conns[i].outstanding > 0 && batch_conns[i].state == S_OPEN) return 0;
    return 1;
}

static void echo_run(int n, const frame_t *fr, int in_flight, double seconds, double *rate, double *cpu) {
    conn *conns = connect_many(n, req_echo);
    memset(&echo, 0, sizeof echo);
    echo.frame = fr;
    on_messages = echo_messages;
    double cpu0 = server_cpu_us();
    echo.start = now(), echo.stop_at = echo.start + seconds;
    for (int i = 0; i < n; i++) send_frames(&conns[i], fr, in_flight);
    if (!run_until(echo_done, seconds + WAIT_S)) die("timed out waiting for echoes");
    *rate = echo.total / (echo.end - echo.start);
    *cpu = (echo.cpu_end - cpu0) / echo.total;
    batch_conns = conns, batch_n = n;
    run_until(drained, 10); /* let what is in flight land, so that the next run starts from quiet */
    close_all(conns, n);
}

/* ---- handshakes: open, close handshake, TCP close; 10 at a time ---- */
static struct {
    long count;
    int active;
} hs;

static void hs_open(conn *c) { send_once(c, close_frame, sizeof close_frame); }
static void hs_closed(conn *c) {
    if (!c->close_received) die("the server closed TCP without a close frame");
    hs.count++, hs.active--;
    c->state = S_FREE;
}

static void handshakes(double seconds, double *rate, double *cpu) {
    enum { CONCURRENCY = 10 };
    static conn slots[CONCURRENCY];
    memset(slots, 0, sizeof slots);
    memset(&hs, 0, sizeof hs);
    on_messages = NULL, on_open = hs_open, on_closed = hs_closed;
    double cpu0 = server_cpu_us(), start = now(), stop_at = start + seconds, deadline = stop_at + WAIT_S;
    for (;;) {
        double t = now();
        for (int i = 0; i < CONCURRENCY && t < stop_at && hs.count < MAX_MESSAGES; i++)
            if (slots[i].state == S_FREE) conn_start(&slots[i], req_echo), hs.active++;
        if (!hs.active) break;
        if (t > deadline) die("timed out in the handshakes scenario");
        poll_once(0.01);
    }
    double end = now();
    *rate = hs.count / (end - start);
    *cpu = (server_cpu_us() - cpu0) / hs.count;
    on_open = NULL, on_closed = NULL;
}

/* ---- idle memory: server RSS added per open, silent connection ---- */
static double idle_memory(int n) {
    double settle = 0.05 + n / 4000.0;
    if (settle > 0.5) settle = 0.5;
    int warm_n = n < 50 ? n : 50;
    conn *warm = connect_many(warm_n, req_echo);
    idle_for(settle);
    long before = rss_kib();
    conn *conns = connect_many(n, req_echo);
    idle_for(settle);
    long after = rss_kib();
    close_all(conns, n);
    close_all(warm, warm_n);
    return (double)(after - before) / n;
}

/* ---- broadcast: the control connection asks, the server sends one message to n clients ---- */
static long bcast_remaining;
static void bcast_messages(conn *c, long k) {
    if (!c->control) bcast_remaining -= k;
}
static int bcast_done(void) { return bcast_remaining <= 0; }

static void broadcast(int n, int runs, double seconds, double *rates, double *cpus) {
    conn *conns = connect_many(n, req_echo);
    conn *control = connect_many(1, req_control);
    on_messages = bcast_messages;
    for (int r = 0; r < runs; r++) {
        long rounds = 0;
        double cpu0 = server_cpu_us(), start = now(), stop_at = start + seconds;
        while (now() < stop_at && rounds < 100000) {
            bcast_remaining = n;
            send_frames(control, &f_trigger, 1);
            if (!run_until(bcast_done, WAIT_S)) die("timed out waiting for a broadcast");
            rounds++;
        }
        rates[r] = (double)n * rounds / (now() - start);
        cpus[r] = (server_cpu_us() - cpu0) / ((double)n * rounds);
    }
    close_all(control, 1);
    close_all(conns, n);
}

/* ---- output ---- */
static void json_list(FILE *out, const double *v, int n) {
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        char num[32];
        snprintf(num, sizeof num, "%.17g", v[i]);
        if (!isfinite(v[i])) strcpy(num, "null");
        else if (!strpbrk(num, ".e")) strcat(num, ".0"); /* a float, as loadgen.py prints it */
        fprintf(out, "%s%s", i ? ", " : "", num);
    }
    fputc(']', out);
}

static void pin(int core) { /* whatever the inherited affinity; no such core: left as it is */
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static long raise_nofile(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

#define MAX_RUNS 100

typedef struct {
    const char *scenarios;
    int runs, in_flight, conns, idle, bcast, core;
    double seconds;
} options;

static options parse_args(int argc, char **argv) {
    options o = {.scenarios = "idle memory,rtt,pipelined,100 conns,1 MiB echo,handshakes,broadcast",
                 .runs = 3, .in_flight = 100, .conns = 100, .idle = 2000, .bcast = 1000, .core = 1, .seconds = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--deflate")) die("no permessage-deflate here: use loadgen.py");
        if (!v) die("%s needs a value", a);
        i++;
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--pid")) server_pid = atoi(v);
        else if (!strcmp(a, "--scenarios")) o.scenarios = v;
        else if (!strcmp(a, "--runs")) o.runs = atoi(v);
        else if (!strcmp(a, "--seconds")) o.seconds = atof(v);
        else if (!strcmp(a, "--in-flight")) o.in_flight = atoi(v);
        else if (!strcmp(a, "--conns")) o.conns = atoi(v);
        else if (!strcmp(a, "--idle")) o.idle = atoi(v);
        else if (!strcmp(a, "--bcast")) o.bcast = atoi(v);
        else if (!strcmp(a, "--core")) o.core = atoi(v);
        else if (strcmp(a, "--loop") != 0) die("unknown option %s", a); /* --loop: loadgen.py's */
    }
    if (!port) die("--port is required");
    if (o.runs < 1 || o.runs > MAX_RUNS) die("--runs must be 1 to %d", MAX_RUNS);
    return o;
}

/* The frames and opening requests, built once. */
static void build_frames(void) {
    unsigned char *blob = malloc(BLOB_SIZE);
    if (!blob) die("out of memory");
    uint32_t x = 4;
    for (size_t i = 0; i < BLOB_SIZE; i++) { /* letters and spaces, like common.BLOB */
        x = x * 1103515245u + 12345u;
        blob[i] = (x >> 16) % 6 == 0 ? ' ' : 'a' + (x >> 16) % 26;
    }
    frame_build(&f_small, 1, (const unsigned char *)TEXT, 64, 256);
    frame_build(&f_big, 2, blob, BLOB_SIZE, 1);
    free(blob);
    frame_build(&f_trigger, 1, (const unsigned char *)"go", 2, 1);
    frame_t fc;
    frame_build(&fc, 8, (const unsigned char *)"\x03\xe8", 2, 1);
    memcpy(close_frame, fc.rep, sizeof close_frame);
    req_echo = request("/");
    req_control = request(CONTROL_PATH);
}

/* One scenario's figures (one per run; idle memory: one) and CPU µs per message; the count. */
static int run_scenario(const char *name, const options *o, double *rates, double *cpus) {
    for (int r = 0; r < o->runs; r++) cpus[r] = NAN;
    if (!strcmp(name, "idle memory")) {
        if (!server_pid) die("idle memory needs --pid");
        rates[0] = idle_memory(o->idle);
        return 1;
    }
    int big = !strcmp(name, "1 MiB echo"), pipelined = !strcmp(name, "pipelined");
    int many = !strcmp(name, "100 conns");
    if (big || pipelined || many || !strcmp(name, "rtt")) {
        for (int r = 0; r < o->runs; r++) {
            echo_run(many ? o->conns : 1, big ? &f_big : &f_small, pipelined ? o->in_flight : 1, o->seconds,
                     &rates[r], &cpus[r]);
            if (big) rates[r] *= BLOB_SIZE / (double)(1 << 20);
        }
    } else if (!strcmp(name, "handshakes")) {
        for (int r = 0; r < o->runs; r++) handshakes(o->seconds, &rates[r], &cpus[r]);
    } else if (!strcmp(name, "broadcast")) {
        broadcast(o->bcast, o->runs, o->seconds, rates, cpus);
    } else {
        die("unknown scenario '%s'; known: idle memory, rtt, pipelined, 100 conns, 1 MiB echo, handshakes,"
            " broadcast", name);
    }
    return o->runs;
}

int main(int argc, char **argv) {
    options o = parse_args(argc, argv);
    pin(o.core);
    long needed = (o.idle + 50 > o.bcast + 1 ? o.idle + 50 : o.bcast + 1);
    needed = (needed > o.conns ? needed : o.conns) + 64;
    long limit = raise_nofile();
    if (limit < needed) die("RLIMIT_NOFILE is %ld, %ld needed: lower --idle / --bcast", limit, needed);
    signal(SIGPIPE, SIG_IGN);
    clk_tck = sysconf(_SC_CLK_TCK);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    epfd = epoll_create1(EPOLL_CLOEXEC);
    build_frames();

    char *list = strdup(o.scenarios), *save = NULL, results[1 << 14], cpu[1 << 14];
    FILE *res = fmemopen(results, sizeof results, "w"), *cpu_out = fmemopen(cpu, sizeof cpu, "w");
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        double rates[MAX_RUNS], cpus[MAX_RUNS];
        int n = run_scenario(name, &o, rates, cpus);
        fprintf(res, "%s\"%s\": ", ftell(res) ? ", " : "", name);
        json_list(res, rates, n);
        if (server_pid && strcmp(name, "idle memory")) {
            fprintf(cpu_out, "%s\"%s\": ", ftell(cpu_out) ? ", " : "", name);
            json_list(cpu_out, cpus, n);
        }
    }
    fclose(res);
    fclose(cpu_out);
    printf("{\"loop\": \"epoll (C)\", \"results\": {%s}, \"cpu\": {%s}}\n", results, cpu);
    return 0;
}
