#include "siptls/status.h"

#include <stddef.h>

struct status_row {
    int code;
    int fatal;
    const char *name;
    const char *text;
};

static const struct status_row rows[] = {
#define SIPTLS_X_ROW(name, value, fatal, text) {(value), (fatal), #name, (text)},
    SIPTLS_STATUS_TABLE(SIPTLS_X_ROW)
#undef SIPTLS_X_ROW
};

/* TLS alert descriptions: RFC 5246 §7.2, RFC 8446 §6, RFC 6066 §3 and §8,
 * RFC 4279 §2, RFC 7301 §3.2, RFC 7507 §2. */
#define SIPTLS_ALERTS(A)                    \
    A(0, close_notify)                      \
    A(10, unexpected_message)               \
    A(20, bad_record_mac)                   \
    A(21, decryption_failed)                \
    A(22, record_overflow)                  \
    A(30, decompression_failure)            \
    A(40, handshake_failure)                \
    A(41, no_certificate)                   \
    A(42, bad_certificate)                  \
    A(43, unsupported_certificate)          \
    A(44, certificate_revoked)              \
    A(45, certificate_expired)              \
    A(46, certificate_unknown)              \
    A(47, illegal_parameter)                \
    A(48, unknown_ca)                       \
    A(49, access_denied)                    \
    A(50, decode_error)                     \
    A(51, decrypt_error)                    \
    A(60, export_restriction)               \
    A(70, protocol_version)                 \
    A(71, insufficient_security)            \
    A(80, internal_error)                   \
    A(86, inappropriate_fallback)           \
    A(90, user_canceled)                    \
    A(100, no_renegotiation)                \
    A(109, missing_extension)               \
    A(110, unsupported_extension)           \
    A(111, certificate_unobtainable)        \
    A(112, unrecognized_name)               \
    A(113, bad_certificate_status_response) \
    A(114, bad_certificate_hash_value)      \
    A(115, unknown_psk_identity)            \
    A(116, certificate_required)            \
    A(120, no_application_protocol)

struct alert_row {
    int code;
    const char *name;
    const char *text; /* siptls_strerror() of SIPTLS_ERR_PEER_ALERT(code) */
};

static const struct alert_row alerts[] = {
#define SIPTLS_A_ROW(code, name) {(code), #name, "peer sent fatal TLS alert " #name " (" #code ")"},
    SIPTLS_ALERTS(SIPTLS_A_ROW)
#undef SIPTLS_A_ROW
};

static const struct alert_row *find_alert(int description)
{
    for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++) {
        if (alerts[i].code == description) {
            return &alerts[i];
        }
    }
    return NULL;
}

int siptls_status_peer_alert(int status)
{
    int d = SIPTLS_ERR_PEER_ALERT_BASE - status;
    return d >= 0 && d <= 255 ? d : -1;
}

const char *siptls_tls_alert_name(int description)
{
    const struct alert_row *a = find_alert(description);
    return a ? a->name : NULL;
}

static const struct status_row *find_row(int status)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].code == status) {
            return &rows[i];
        }
    }
    return NULL;
}

const char *siptls_strerror(int status)
{
    const struct status_row *r = find_row(status);
    if (r != NULL) {
        return r->text;
    }
    int d = siptls_status_peer_alert(status);
    if (d >= 0) {
        const struct alert_row *a = find_alert(d);
        return a ? a->text : "peer sent a fatal TLS alert (a description no RFC defines)";
    }
    return "unknown status";
}

const char *siptls_status_name(int status)
{
    const struct status_row *r = find_row(status);
    if (r == NULL && siptls_status_peer_alert(status) >= 0) {
        return "SIPTLS_ERR_PEER_ALERT";
    }
    return r ? r->name : "SIPTLS_UNKNOWN";
}

int siptls_status_is_fatal(int status)
{
    const struct status_row *r = find_row(status);
    return r ? r->fatal : 1; /* a peer's fatal alert too */
}
