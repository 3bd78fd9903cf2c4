/* cert: see cert.h. */
#include "cert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int cert_make(struct cert *c)
{
    int rc = -1;
    EVP_PKEY *key = NULL, *other = NULL;
    X509 *x = NULL;
    X509_EXTENSION *ext = NULL;
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/nudge-tls-XXXXXX");
    if (!mkdtemp(c->dir)) {
        c->dir[0] = '\0';
        return -1;
    }
    snprintf(c->cert, sizeof(c->cert), "%s/cert.pem", c->dir);
    snprintf(c->key, sizeof(c->key), "%s/key.pem", c->dir);
    snprintf(c->other, sizeof(c->other), "%s/other.pem", c->dir);
    if (!(key = EVP_EC_gen("P-256")) || !(other = EVP_EC_gen("P-256")) || !(x = X509_new()))
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    if (!ext || !X509_add_ext(x, ext, -1)) goto out;
    if (!X509_sign(x, key, EVP_sha256())) goto out;
    FILE *f = fopen(c->cert, "w");
    if (!f) goto out;
    int ok = PEM_write_X509(f, x) == 1;
    if (fclose(f) != 0 || !ok) goto out;
    if (write_key(c->key, key) < 0 || write_key(c->other, other) < 0) goto out;
    rc = 0;
out:
    X509_EXTENSION_free(ext);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    if (rc < 0) cert_remove(c);
    return rc;
}

void cert_remove(struct cert *c)
{
    if (!c->dir[0]) return;
    unlink(c->cert);
    unlink(c->key);
    unlink(c->other);
    rmdir(c->dir);
    c->dir[0] = '\0';
}
