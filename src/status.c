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
    return r ? r->text : "unknown status";
}

const char *siptls_status_name(int status)
{
    const struct status_row *r = find_row(status);
    return r ? r->name : "SIPTLS_UNKNOWN";
}

int siptls_status_is_fatal(int status)
{
    const struct status_row *r = find_row(status);
    return r ? r->fatal : 1;
}
