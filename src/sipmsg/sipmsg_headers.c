/* siptls — header-block scanning shared by both framers, and the header
 * helpers of the public API (siptls_sipmsg_header*, is_request).
 *
 * The scanner is the hot path of the stream framer: memchr() finds line
 * ends, and only lines whose first letter is 'c' or 'l' are looked at
 * further (Content-Length and its compact form). */
#include "sipmsg/sipmsg_internal.h"

#include <string.h>

#define DEFAULT_MAX_MSG_SIZE 65535u
#define DEFAULT_MAX_HEADER_SIZE 16384u
#define DEFAULT_MAX_CHUNKS 4u
#define DEFAULT_MAX_MSG_TIME_MS 4000u

void siptls_framer_limits_init(siptls_framer_limits *lim)
{
    if (lim == NULL) {
        return;
    }
    lim->max_msg_size = DEFAULT_MAX_MSG_SIZE;
    lim->max_header_size = DEFAULT_MAX_HEADER_SIZE;
    lim->max_chunks = DEFAULT_MAX_CHUNKS;
    lim->chunk_full_bytes = 0;
    lim->max_msg_time_ms = DEFAULT_MAX_MSG_TIME_MS;
    lim->crlf_drop = 0;
}

int siptls__framer_limits_check(const siptls_framer_limits *lim)
{
    /* Both sizes are added together for the stream hold limit: keep them far
     * from overflowing size_t. */
    if (lim->max_msg_size == 0 || lim->max_header_size == 0 || lim->max_msg_size > SIZE_MAX / 4 ||
        lim->max_header_size > SIZE_MAX / 4) {
        return SIPTLS_ERR_INVAL;
    }
    return SIPTLS_OK;
}

static inline uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

static inline int is_ws(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static inline int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* `lc` is lower case; compares n bytes ignoring ASCII case. */
static int ci_equal(const uint8_t *p, const char *lc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower(p[i]) != (uint8_t)lc[i]) {
            return 0;
        }
    }
    return 1;
}

int siptls__sipmsg_token_char(uint8_t c)
{
    /* RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*"
     * / "_" / "+" / "`" / "'" / "~" ). */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) {
        return 1;
    }
    switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~':
        return 1;
    default:
        return 0;
    }
}

int siptls__sipmsg_start_line_ok(const uint8_t *line, size_t len)
{
    /* RFC 3261 §7.2: "Status-Line = SIP-Version SP Status-Code SP
     * Reason-Phrase CRLF". The reason phrase may be empty; tolerate a
     * missing final SP too. */
    if (len >= 11 && ci_equal(line, "sip/2.0 ", 8)) {
        return is_digit(line[8]) && is_digit(line[9]) && is_digit(line[10]) &&
               (len == 11 || line[11] == ' ');
    }
    /* RFC 3261 §7.1: "Request-Line = Method SP Request-URI SP SIP-Version
     * CRLF". Cheap check: a token, a space, something, " SIP/2.0". */
    if (len < 11 || !ci_equal(line + len - 8, " sip/2.0", 8)) {
        return 0;
    }
    size_t i = 0;
    while (i < len - 8 && siptls__sipmsg_token_char(line[i])) {
        i++;
    }
    /* The method is non-empty, followed by SP, and the URI is non-empty. */
    return i > 0 && line[i] == ' ' && i + 1 < len - 8;
}

/* Look at one header line (without CR LF) for Content-Length.
 * Returns 0 when the line is another header, 1 with *val set, or
 * SIPTLS_ERR_FRAME_BAD_CL. */
static int content_length_line(const uint8_t *p, size_t n, uint64_t *val)
{
    size_t i;
    /* RFC 3261 §7.3.3: compact form "l" for Content-Length; §7.3.1: header
     * names are case-insensitive; §25.1: HCOLON = *( SP / HTAB ) ":" SWS. */
    if (n >= 14 && ci_equal(p, "content-length", 14)) {
        i = 14;
    } else if (n >= 1 && lower(p[0]) == 'l') {
        i = 1;
    } else {
        return 0;
    }
    while (i < n && is_ws(p[i])) {
        i++;
    }
    if (i >= n || p[i] != ':') {
        return 0; /* e.g. "Location:" or "Content-Length-Foo:" */
    }
    i++;
    while (i < n && is_ws(p[i])) {
        i++;
    }
    /* RFC 3261 §20.14: "Content-Length = ( "Content-Length" / "l" ) HCOLON
     * 1*DIGIT". So no sign, no empty value. */
    if (i >= n || !is_digit(p[i])) {
        return SIPTLS_ERR_FRAME_BAD_CL;
    }
    uint64_t v = 0;
    while (i < n && is_digit(p[i])) {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return SIPTLS_ERR_FRAME_BAD_CL; /* does not fit 64 bits */
        }
        v = v * 10 + d;
        i++;
    }
    while (i < n && is_ws(p[i])) {
        i++;
    }
    if (i != n) {
        return SIPTLS_ERR_FRAME_BAD_CL;
    }
    *val = v;
    return 1;
}

int siptls__hdr_scan_run(siptls__hdr_scan *s, const uint8_t *msg, size_t avail, size_t max_hdr)
{
    size_t lim = avail < max_hdr ? avail : max_hdr;
    size_t p = s->scan;
    size_t line = s->line;
    uint64_t scanned = s->scanned;
    int rc = SIPTLS_AGAIN;

    while (p < lim) {
        const uint8_t *nl;
        if (lim - p <= 16) {
            /* A few new bytes (small feeds): a loop beats a memchr call. */
            nl = NULL;
            for (size_t k = p; k < lim; k++) {
                if (msg[k] == '\n') {
                    nl = msg + k;
                    break;
                }
            }
        } else {
            nl = memchr(msg + p, '\n', lim - p);
        }
        if (nl == NULL) {
            scanned += lim - p;
            p = lim;
            break;
        }
        size_t q = (size_t)(nl - msg);
        scanned += q + 1 - p;
        size_t ls = line;
        size_t n = q - ls;
        /* Bare LF is tolerated as a line end (RFC 3261 §7.5 asks for CRLF,
         * but being lenient here costs nothing). */
        if (n > 0 && msg[q - 1] == '\r') {
            n--;
        }
        p = q + 1;
        line = p;
        if (ls == 0) {
            if (!siptls__sipmsg_start_line_ok(msg, n)) {
                rc = SIPTLS_ERR_FRAME_GARBAGE;
                break;
            }
            continue;
        }
        if (n == 0) {
            /* The empty line: end of the header block. NUL bytes are never
             * valid in it (one memchr per message, not per line). */
            scanned += p;
            if (memchr(msg, 0, p) != NULL) {
                rc = SIPTLS_ERR_FRAME_GARBAGE;
                break;
            }
            s->header_len = p;
            rc = SIPTLS_OK;
            break;
        }
        uint8_t c = (uint8_t)(msg[ls] | 0x20);
        if (c == 'c' || c == 'l') {
            uint64_t v = 0;
            int r = content_length_line(msg + ls, n, &v);
            if (r < 0) {
                rc = r;
                break;
            }
            if (r == 1) {
                /* Duplicates are tolerated when they agree: the framing
                 * stays unambiguous. */
                if (s->have_cl && s->cl != v) {
                    rc = SIPTLS_ERR_FRAME_DUP_CL;
                    break;
                }
                s->have_cl = 1;
                s->cl = v;
            }
        }
    }
    s->scan = p;
    s->line = line;
    s->scanned = scanned;
    if (rc == SIPTLS_AGAIN && avail >= max_hdr) {
        rc = SIPTLS_ERR_FRAME_HDR_TOO_BIG; /* max_hdr bytes and no empty line */
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Public helpers                                                           */
/* ------------------------------------------------------------------------ */

int siptls_sipmsg_header_next(const uint8_t *msg, size_t header_len, const char *name, char compact,
                              size_t *cursor, const uint8_t **value, size_t *value_len)
{
    if (msg == NULL || name == NULL || cursor == NULL || value == NULL || value_len == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    size_t name_len = strlen(name);
    size_t p = *cursor;
    if (p == 0) {
        /* Skip the start line. */
        const uint8_t *nl = memchr(msg, '\n', header_len);
        if (nl == NULL) {
            return SIPTLS_AGAIN;
        }
        p = (size_t)(nl - msg) + 1;
    }
    while (p < header_len) {
        const uint8_t *nl = memchr(msg + p, '\n', header_len - p);
        if (nl == NULL) {
            break; /* a line cut by header_len: not a whole header */
        }
        size_t e = (size_t)(nl - msg);
        size_t next = e + 1;
        size_t n = e - p;
        if (n > 0 && msg[e - 1] == '\r') {
            n--;
        }
        const uint8_t *line = msg + p;
        if (n == 0) {
            break; /* the empty line ends the header block */
        }
        p = next;
        if (is_ws(line[0])) {
            continue; /* folded continuation of the previous header */
        }
        const uint8_t *colon = memchr(line, ':', n);
        if (colon == NULL) {
            continue;
        }
        size_t nl_len = (size_t)(colon - line);
        while (nl_len > 0 && is_ws(line[nl_len - 1])) {
            nl_len--;
        }
        int match = 0;
        if (nl_len == name_len && name_len > 0) {
            match = 1;
            for (size_t i = 0; i < nl_len; i++) {
                if (lower(line[i]) != lower((uint8_t)name[i])) {
                    match = 0;
                    break;
                }
            }
        }
        if (!match && compact != 0 && nl_len == 1 && lower(line[0]) == lower((uint8_t)compact)) {
            match = 1;
        }
        if (!match) {
            continue;
        }
        size_t vs = (size_t)(colon - line) + 1;
        while (vs < n && is_ws(line[vs])) {
            vs++;
        }
        size_t ve = n;
        while (ve > vs && is_ws(line[ve - 1])) {
            ve--;
        }
        *value = line + vs;
        *value_len = ve - vs;
        *cursor = p;
        return SIPTLS_OK;
    }
    *cursor = header_len;
    return SIPTLS_AGAIN;
}

int siptls_sipmsg_header(const uint8_t *msg, size_t header_len, const char *name, char compact,
                         const uint8_t **value, size_t *value_len)
{
    size_t cursor = 0;
    return siptls_sipmsg_header_next(msg, header_len, name, compact, &cursor, value, value_len);
}

int siptls_sipmsg_is_request(const uint8_t *msg, size_t len)
{
    if (msg == NULL || len == 0) {
        return 0;
    }
    /* RFC 3261 §7.2: responses start with the SIP-Version. */
    if (len >= 8 && ci_equal(msg, "sip/2.0 ", 8)) {
        return 0;
    }
    return 1;
}
