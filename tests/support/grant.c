/* grant: see grant.h. The token goes through the same hello path a WebSocket's does. */
#include "grant.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"

struct auth_grant *grant_mint(struct auth *a, const char *secret, const char *sub,
                              const char *topics)
{
    char claims[512];
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld%s%s}", sub,
             (long long)(time(NULL) + 600), topics ? ",\"topics\":" : "", topics ? topics : "");
    char *tok = jwt_mint("HS256", secret, strlen(secret), NULL, claims);
    cr_assert_not_null(tok);
    struct auth_grant *g = NULL;
    const char *why = "";
    struct wire_str t = {tok, (uint32_t)strlen(tok)};
    int rc = auth_sub_hello(a, t, time(NULL), &g, &why);
    free(tok);
    cr_assert_eq(rc, 0, "hello refused: %s", why);
    return g;
}
