/* siptls — SIP over TLS and SIP over DTLS behind one transport abstraction.
 * Umbrella header: include this one. */
#ifndef SIPTLS_SIPTLS_H
#define SIPTLS_SIPTLS_H

#include "siptls/config.h"
#include "siptls/devcert.h"
#include "siptls/engine.h"
#include "siptls/flow.h"
#include "siptls/sipmsg.h"
#include "siptls/stats.h"
#include "siptls/status.h"
#include "siptls/target.h"
#include "siptls/threads.h"
#include "siptls/token.h"
#include "siptls/uri.h"

#endif
