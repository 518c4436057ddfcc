/* A small SIP registrar and stateless edge proxy on siptls (docs/api.md,
 * "A registrar and relay"): TLS and DTLS listeners on one loop,
 *
 *   REGISTER           the AOR (To URI) is bound to the flow the REGISTER
 *                      came in on, kept as a flow token (RFC 5626), 200 OK
 *   request to an AOR  of our domain: relayed over that AOR's flow, whatever
 *                      transport each side uses (TLS <-> DTLS); 404 when
 *                      nobody registered it, 430 Flow Failed when its flow
 *                      is gone
 *   request elsewhere  sent to its Request-URI as a SIP URI (siptls_send_to:
 *                      RFC 3263 for a name, the certificate checked against
 *                      the SIP domain as RFC 5922 says)
 *   response           back over the flow named by the token in our Via
 *
 * The proxy adds its Via with the flow token of the flow the request came
 * in on as the branch's tail: a response finds its way back without any
 * transaction state. Max-Forwards is decremented (483 at 0).
 *
 * Usage: example_proxy CERT KEY CA DOMAIN
 * prints "ready tls=PORT dtls=PORT" once listening on 127.0.0.1 (ports
 * chosen by the system), runs until SIGTERM or SIGINT. Build:
 *   cc proxy.c $(pkg-config --cflags --libs siptls) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasestr */
#endif
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <siptls/siptls.h>

#define MAX_AORS 256
#define MAX_MSG 65536
#define VIA_HOST "proxy.invalid"
#define BRANCH_PREFIX "z9hG4bK-sp-"

typedef struct binding {
    char aor[256];
    char token[SIPTLS_FLOW_TOKEN_SIZE];
} binding;

typedef struct proxy {
    const char *domain;
    binding regs[MAX_AORS];
    size_t n_regs;
    unsigned relayed, answered;
} proxy;

/* The URI of a name-addr or addr-spec header value: inside <...> when
 * there, else up to the first ';'. Copied into out (NUL-terminated). */
static void header_uri(const uint8_t *v, size_t vl, char *out, size_t outlen)
{
    const char *s = (const char *)v, *end = s + vl;
    const char *lt = memchr(s, '<', vl);
    if (lt != NULL) {
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        s = lt + 1;
        end = gt != NULL ? gt : end;
    } else {
        const char *semi = memchr(s, ';', vl);
        end = semi != NULL ? semi : end;
    }
    size_t n = (size_t)(end - s) < outlen - 1 ? (size_t)(end - s) : outlen - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* The AOR of a SIP URI: "sip:user@host" without port or parameters, the
 * scheme sips: taken as sip: (one binding for both). */
static void aor_of(const char *uri, char *out, size_t outlen)
{
    const char *s = uri;
    if (strncasecmp(s, "sips:", 5) == 0) {
        s += 5;
    } else if (strncasecmp(s, "sip:", 4) == 0) {
        s += 4;
    }
    size_t n = strcspn(s, ":;?>");
    snprintf(out, outlen, "sip:%.*s", (int)n, s);
}

/* The host of an AOR ("example.test" of "sip:alice@example.test"). */
static const char *aor_host(const char *aor)
{
    const char *at = strchr(aor, '@');
    return at != NULL ? at + 1 : aor + 4;
}

static binding *find_binding(proxy *p, const char *aor)
{
    for (size_t i = 0; i < p->n_regs; i++) {
        if (strcasecmp(p->regs[i].aor, aor) == 0) {
            return &p->regs[i];
        }
    }
    return NULL;
}

/* A response to request `m` (RFC 3261 §8.2.6: Via, From, To, Call-ID and
 * CSeq copied; a To tag added when the request had none). */
static void reply(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, const char *status)
{
    char out[8192];
    size_t n = (size_t)snprintf(out, sizeof(out), "SIP/2.0 %s\r\n", status);
    static const struct {
        const char *name;
        char compact;
    } copy[] = {{"Via", 'v'}, {"From", 'f'}, {"To", 't'}, {"Call-ID", 'i'}, {"CSeq", 0}};
    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
        size_t cur = 0, vl;
        const uint8_t *v;
        while (siptls_sipmsg_header_next(m->data, m->header_len, copy[i].name, copy[i].compact,
                                         &cur, &v, &vl) == SIPTLS_OK &&
               n < sizeof(out)) {
            int tag = strcmp(copy[i].name, "To") == 0 && memmem(v, vl, ";tag=", 5) == NULL;
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s: %.*s%s\r\n", copy[i].name, (int)vl,
                                  (const char *)v, tag ? ";tag=sp1" : "");
        }
    }
    if (n < sizeof(out)) {
        n += (size_t)snprintf(out + n, sizeof(out) - n, "Content-Length: 0\r\n\r\n");
    }
    if (n < sizeof(out)) {
        siptls_send(e, flow, (const uint8_t *)out, n);
    }
}

/* The request `m` with our Via on top (its branch carries the token of the
 * flow it came in on) and Max-Forwards one less. Returns the length
 * written into out, 0 when it does not fit. */
static size_t forward_copy(const siptls_msg *m, const char *via_proto, const char *token, char *out,
                           size_t outlen)
{
    const char *s = (const char *)m->data, *hend = s + m->header_len;
    const char *eol = memmem(s, m->header_len, "\r\n", 2);
    if (eol == NULL || eol > hend) {
        return 0;
    }
    size_t n = (size_t)snprintf(
        out, outlen, "%.*s\r\nVia: SIP/2.0/%s " VIA_HOST ";branch=" BRANCH_PREFIX "%s\r\n",
        (int)(eol - s), s, via_proto, token);
    for (const char *line = eol + 2; line < hend && n < outlen;) {
        const char *next = memmem(line, (size_t)(hend - line), "\r\n", 2);
        if (next == NULL) {
            break;
        }
        size_t len = (size_t)(next - line);
        if (len == 0) {
            break; /* the empty line: headers end */
        }
        if (len >= 13 && strncasecmp(line, "Max-Forwards:", 13) == 0) {
            long mf = strtol(line + 13, NULL, 10);
            n += (size_t)snprintf(out + n, outlen - n, "Max-Forwards: %ld\r\n", mf - 1);
        } else {
            n += (size_t)snprintf(out + n, outlen - n, "%.*s\r\n", (int)len, line);
        }
        line = next + 2;
    }
    if (n + m->body_len + 2 > outlen) {
        return 0;
    }
    memcpy(out + n, "\r\n", 2);
    memcpy(out + n + 2, m->body, m->body_len);
    return n + 2 + m->body_len;
}

static const char *via_proto(siptls_engine *e, siptls_flow_id flow)
{
    siptls_flow_info info;
    if (siptls_flow_get_info(e, flow, &info) == SIPTLS_OK &&
        info.transport == SIPTLS_TRANSPORT_DTLS) {
        return "DTLS";
    }
    return "TLS";
}

static void on_request(proxy *p, siptls_engine *e, siptls_flow_id in, const siptls_msg *m)
{
    const uint8_t *v;
    size_t vl;
    if (siptls_sipmsg_header(m->data, m->header_len, "Max-Forwards", 0, &v, &vl) == SIPTLS_OK &&
        strtol((const char *)v, NULL, 10) <= 0) {
        reply(e, in, m, "483 Too Many Hops");
        return;
    }
    if (m->len > 9 && strncmp((const char *)m->data, "REGISTER ", 9) == 0) {
        char uri[256], aor[256];
        if (siptls_sipmsg_header(m->data, m->header_len, "To", 't', &v, &vl) != SIPTLS_OK) {
            reply(e, in, m, "400 Bad Request");
            return;
        }
        header_uri(v, vl, uri, sizeof(uri));
        aor_of(uri, aor, sizeof(aor));
        binding *b = find_binding(p, aor);
        if (b == NULL && p->n_regs < MAX_AORS) {
            b = &p->regs[p->n_regs++];
            snprintf(b->aor, sizeof(b->aor), "%s", aor);
        }
        if (b == NULL || siptls_flow_token(e, in, b->token, sizeof(b->token)) != SIPTLS_OK) {
            reply(e, in, m, "500 Server Internal Error");
            return;
        }
        reply(e, in, m, "200 OK");
        return;
    }
    /* The Request-URI: "METHOD SP URI SP SIP/2.0" */
    const char *sp1 = memchr(m->data, ' ', m->header_len);
    const char *sp2 =
        sp1 != NULL
            ? memchr(sp1 + 1, ' ', m->header_len - (size_t)(sp1 + 1 - (const char *)m->data))
            : NULL;
    if (sp2 == NULL || (size_t)(sp2 - sp1 - 1) >= 256) {
        reply(e, in, m, "400 Bad Request");
        return;
    }
    char ruri[256], aor[256], token[SIPTLS_FLOW_TOKEN_SIZE];
    memcpy(ruri, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    ruri[sp2 - sp1 - 1] = '\0';
    aor_of(ruri, aor, sizeof(aor));
    if (siptls_flow_token(e, in, token, sizeof(token)) != SIPTLS_OK) {
        return; /* the flow closed meanwhile */
    }
    static char out[MAX_MSG + 512];
    if (strcasecmp(aor_host(aor), p->domain) == 0) {
        binding *b = find_binding(p, aor);
        siptls_flow_id to;
        if (b == NULL) {
            reply(e, in, m, "404 Not Found");
            return;
        }
        if (siptls_flow_from_token(e, b->token, &to) != SIPTLS_OK) {
            reply(e, in, m, "430 Flow Failed"); /* RFC 5626 §5.3 */
            return;
        }
        size_t n = forward_copy(m, via_proto(e, to), token, out, sizeof(out));
        if (n == 0 || siptls_send(e, to, (const uint8_t *)out, n) != SIPTLS_OK) {
            reply(e, in, m, "503 Service Unavailable");
            return;
        }
        p->relayed++;
        return;
    }
    /* Another domain: to its Request-URI (sip:/sips:, RFC 3263), verified
     * as that SIP domain. The Via names the transport the URI asks for. */
    const char *proto = strcasestr(ruri, ";transport=dtls") != NULL ? "DTLS" : "TLS";
    size_t n = forward_copy(m, proto, token, out, sizeof(out));
    int st =
        n > 0 ? siptls_send_to(e, ruri, (const uint8_t *)out, n, NULL) : SIPTLS_ERR_FRAME_TOO_BIG;
    if (st != SIPTLS_OK) {
        fprintf(stderr, "proxy: %s: %s\n", ruri, siptls_strerror(st));
        reply(e, in, m, "502 Bad Gateway");
        return;
    }
    p->relayed++;
}

/* A response: our Via on top names the flow its request came in on. */
static void on_response(proxy *p, siptls_engine *e, const siptls_msg *m)
{
    const uint8_t *v;
    size_t vl;
    if (siptls_sipmsg_header(m->data, m->header_len, "Via", 'v', &v, &vl) != SIPTLS_OK) {
        return;
    }
    const char *b = memmem(v, vl, ";branch=" BRANCH_PREFIX, strlen(";branch=" BRANCH_PREFIX));
    if (b == NULL || memmem(v, vl, VIA_HOST, strlen(VIA_HOST)) == NULL) {
        return; /* not ours: a stateless proxy drops it */
    }
    b += strlen(";branch=" BRANCH_PREFIX);
    char token[SIPTLS_FLOW_TOKEN_SIZE];
    size_t tl = 0;
    while (b + tl < (const char *)v + vl && strchr(";, \t", b[tl]) == NULL) {
        tl++;
    }
    if (tl >= sizeof(token)) {
        return;
    }
    memcpy(token, b, tl);
    token[tl] = '\0';
    siptls_flow_id back;
    if (siptls_flow_from_token(e, token, &back) != SIPTLS_OK) {
        return; /* the flow is gone: the response has nowhere to go */
    }
    /* Remove our Via: the first Via header line (the one found above). */
    const char *s = (const char *)m->data;
    const char *line = (const char *)v;
    while (line > s && line[-1] != '\n') {
        line--;
    }
    const char *next = memmem(line, m->header_len - (size_t)(line - s), "\r\n", 2);
    if (next == NULL) {
        return;
    }
    next += 2;
    static char out[MAX_MSG];
    size_t head = (size_t)(line - s), tail = m->len - (size_t)(next - s);
    if (head + tail > sizeof(out)) {
        return;
    }
    memcpy(out, s, head);
    memcpy(out + head, next, tail);
    if (siptls_send(e, back, (const uint8_t *)out, head + tail) == SIPTLS_OK) {
        p->answered++;
    }
}

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    if (siptls_sipmsg_is_request(m->data, m->len)) {
        on_request(user, e, flow, m);
    } else {
        on_response(user, e, m);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: example_proxy CERT KEY CA DOMAIN\n");
        return 2;
    }
    proxy p = {.domain = argv[4]};
    struct ev_loop *loop = ev_default_loop(0);
    siptls_config cfg;
    siptls_config_init(&cfg);
    char ca[1024];
    snprintf(ca, sizeof(ca), "[client:default]%s", argv[3]); /* to verify other domains */
    if (siptls_config_set(&cfg, "certificate", argv[1], NULL) != SIPTLS_OK ||
        siptls_config_set(&cfg, "private_key", argv[2], NULL) != SIPTLS_OK ||
        siptls_config_set(&cfg, "ca_list", ca, NULL) != SIPTLS_OK) {
        fprintf(stderr, "proxy: bad configuration\n");
        return 1;
    }
    siptls_callbacks cb = {.on_message = on_message};
    siptls_engine *e;
    if (siptls_engine_new(&e, loop, &cfg, &cb, &p) != SIPTLS_OK ||
        siptls_listen(e, "tls:127.0.0.1:0") < 0 || siptls_listen(e, "dtls:127.0.0.1:0") < 0) {
        fprintf(stderr, "proxy: cannot start\n");
        return 1;
    }
    ev_signal term, intr;
    ev_signal_init(&term, on_signal, SIGTERM);
    ev_signal_init(&intr, on_signal, SIGINT);
    ev_signal_start(loop, &term);
    ev_signal_start(loop, &intr);
    printf("ready tls=%u dtls=%u\n", siptls_listener_port(e, 0), siptls_listener_port(e, 1));
    fflush(stdout);
    ev_run(loop, 0);
    printf("relayed %u answered %u\n", p.relayed, p.answered);
    siptls_engine_free(e);
    siptls_config_cleanup(&cfg);
    return 0;
}
