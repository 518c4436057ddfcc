/* A host program built against the INSTALLED siptls (tests/install/
 * test_install.sh): only the public umbrella header, only installed files.
 * Prints "ok" when the library answers as documented. */
#include <siptls/siptls.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    siptls_config cfg;
    if (siptls_config_init(&cfg) != SIPTLS_OK) {
        fprintf(stderr, "siptls_config_init failed\n");
        return 1;
    }
    siptls_uri uri;
    int rc = siptls_uri_parse("tls:127.0.0.1:5061", 5061, 5061, 0, &uri);
    if (rc != SIPTLS_OK) {
        fprintf(stderr, "siptls_uri_parse: %s\n", siptls_strerror(rc));
        siptls_config_cleanup(&cfg);
        return 1;
    }
    if (uri.transport != SIPTLS_TRANSPORT_TLS || uri.port != 5061 ||
        strcmp(uri.host, "127.0.0.1") != 0) {
        fprintf(stderr, "siptls_uri_parse: unexpected result\n");
        siptls_config_cleanup(&cfg);
        return 1;
    }
    const char *text = siptls_strerror(SIPTLS_ERR_URI_PORT);
    if (text == NULL || text[0] == '\0' || strcmp(siptls_strerror(SIPTLS_OK), "ok") != 0) {
        fprintf(stderr, "siptls_strerror: unexpected text\n");
        siptls_config_cleanup(&cfg);
        return 1;
    }
    siptls_config_cleanup(&cfg);
    printf("ok\n");
    return 0;
}
