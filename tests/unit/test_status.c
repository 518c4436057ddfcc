/* Unit: the status table — every code has a name and a text, codes are
 * unique, fatality is as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "siptls/status.h"

static const int codes[] = {
#define X(name, value, fatal, text) value,
    SIPTLS_STATUS_TABLE(X)
#undef X
};

static void test_every_code_has_text(void **state)
{
    (void)state;
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(siptls_strerror(codes[i]), "unknown status");
        assert_true(strncmp(siptls_status_name(codes[i]), "SIPTLS_", 7) == 0);
        for (size_t k = i + 1; k < n; k++) {
            assert_int_not_equal(codes[i], codes[k]);
        }
        if (i > 0) {
            assert_true(codes[i] < 0); /* every error is negative */
        }
    }
}

static void test_unknown_and_fatal(void **state)
{
    (void)state;
    assert_string_equal(siptls_strerror(12345), "unknown status");
    assert_string_equal(siptls_status_name(-9999), "SIPTLS_UNKNOWN");
    assert_int_equal(siptls_status_is_fatal(-9999), 1);
    assert_int_equal(siptls_status_is_fatal(SIPTLS_OK), 0);
    assert_int_equal(siptls_status_is_fatal(SIPTLS_AGAIN), 0);
    assert_int_equal(siptls_status_is_fatal(SIPTLS_ERR_QUEUE_FULL), 0);
    assert_int_equal(siptls_status_is_fatal(SIPTLS_ERR_FRAME_CHUNKS), 1);
    assert_int_equal(siptls_status_is_fatal(SIPTLS_ERR_VERIFY), 1);
    assert_string_equal(siptls_status_name(SIPTLS_ERR_GONE), "SIPTLS_ERR_GONE");
}

static void test_peer_alert(void **state)
{
    (void)state;
    int st = SIPTLS_ERR_PEER_ALERT(116);
    assert_int_equal(siptls_status_peer_alert(st), 116);
    assert_string_equal(siptls_strerror(st),
                        "peer sent fatal TLS alert certificate_required (116)");
    assert_string_equal(siptls_status_name(st), "SIPTLS_ERR_PEER_ALERT");
    assert_int_equal(siptls_status_is_fatal(st), 1);
    assert_string_equal(siptls_strerror(SIPTLS_ERR_PEER_ALERT(40)),
                        "peer sent fatal TLS alert handshake_failure (40)");
    assert_string_equal(siptls_strerror(SIPTLS_ERR_PEER_ALERT(0)),
                        "peer sent fatal TLS alert close_notify (0)");
    assert_int_equal(siptls_status_peer_alert(SIPTLS_ERR_PEER_ALERT(0)), 0);
    assert_int_equal(siptls_status_peer_alert(SIPTLS_ERR_PEER_ALERT(255)), 255);
    /* a description no RFC names still reads as an alert */
    assert_int_equal(siptls_status_peer_alert(SIPTLS_ERR_PEER_ALERT(200)), 200);
    assert_non_null(strstr(siptls_strerror(SIPTLS_ERR_PEER_ALERT(200)), "fatal TLS alert"));
    assert_null(siptls_tls_alert_name(200));
    assert_string_equal(siptls_tls_alert_name(48), "unknown_ca");
    /* outside the range: not an alert */
    assert_int_equal(siptls_status_peer_alert(SIPTLS_ERR_PEER_ALERT(0) + 1), -1);
    assert_int_equal(siptls_status_peer_alert(SIPTLS_ERR_PEER_ALERT(256)), -1);
    assert_int_equal(siptls_status_peer_alert(SIPTLS_ERR_TLS), -1);
    assert_int_equal(siptls_status_peer_alert(SIPTLS_OK), -1);
    /* no fixed status falls into the alert range */
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(siptls_status_peer_alert(codes[i]), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_text),
        cmocka_unit_test(test_unknown_and_fatal),
        cmocka_unit_test(test_peer_alert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
