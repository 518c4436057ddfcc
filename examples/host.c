/* A host embedding siptls on its own libev loop: listen on tls:, answer
 * every request with 200 OK, and send itself one OPTIONS to show both
 * sides. Build: cc host.c $(pkg-config --cflags --libs siptls) */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <siptls/siptls.h>

static int answered;

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)user;
    if (!siptls_sipmsg_is_request(m->data, m->len)) { /* a response: we are done */
        printf("got: %.*s\n", (int)(strchr((const char *)m->data, '\r') - (const char *)m->data),
               (const char *)m->data);
        answered = 1;
        ev_break(siptls_engine_loop(e), EVBREAK_ALL);
        return;
    }
    static const char ok[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS host.invalid;branch=z9hG4bK1\r\n"
                             "From: <sip:a@host.invalid>;tag=1\r\nTo: <sip:b@host.invalid>;tag=2\r\n"
                             "Call-ID: 1@host.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    siptls_send(e, flow, (const uint8_t *)ok, sizeof(ok) - 1); /* reply on the same flow */
}

/* A host program must end when its request cannot be delivered: an
 * outbound flow that closes (refused, unverifiable, timed out) stops it. */
static void on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user)
{
    (void)flow, (void)user;
    if (state == SIPTLS_FLOW_CLOSED && !answered) {
        fprintf(stderr, "flow closed: %s\n", siptls_strerror(reason));
        ev_break(siptls_engine_loop(e), EVBREAK_ALL);
    }
}

int main(void)
{
    struct ev_loop *loop = ev_default_loop(0);
    siptls_config cfg;
    siptls_config_init(&cfg);
    char *cert, *key; /* development certificate, in memory */
    siptls_devcert_generate("localhost", &cert, &key);
    umask(077); /* the key file is for this user alone */
    FILE *c = fopen("host-cert.pem", "w"), *k = fopen("host-key.pem", "w");
    if (c == NULL || k == NULL) {
        perror("host-cert.pem, host-key.pem");
        return 1;
    }
    fputs(cert, c), fputs(key, k), fclose(c), fclose(k);
    siptls_config_set(&cfg, "certificate", "host-cert.pem", NULL);
    siptls_config_set(&cfg, "private_key", "host-key.pem", NULL);
    siptls_config_set(&cfg, "ca_list", "[client:default]host-cert.pem", NULL); /* trust it */
    siptls_callbacks cb = {.on_message = on_message, .on_flow = on_flow};
    siptls_engine *e;
    if (siptls_engine_new(&e, loop, &cfg, &cb, NULL) != SIPTLS_OK ||
        siptls_listen(e, "tls:127.0.0.1:0") < 0) {
        return 1;
    }
    char uri[64], req[512];
    snprintf(uri, sizeof(uri), "tls:localhost:%u", siptls_listener_port(e, 0));
    int n = snprintf(req, sizeof(req), "OPTIONS sip:localhost SIP/2.0\r\n"
                     "Via: SIP/2.0/TLS host.invalid;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n"
                     "From: <sip:a@host.invalid>;tag=1\r\nTo: <sip:b@host.invalid>\r\n"
                     "Call-ID: 1@host.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    int st = siptls_send_to(e, uri, (const uint8_t *)req, (size_t)n, NULL); /* opens, verifies, sends */
    if (st == SIPTLS_OK) {
        ev_run(loop, 0);
    } else {
        fprintf(stderr, "send_to %s: %s\n", uri, siptls_strerror(st));
    }
    siptls_engine_free(e);
    siptls_config_cleanup(&cfg);
    free(cert), free(key);
    return answered ? 0 : 1;
}
