/* cert: a throwaway self-signed certificate for TLS tests, made with the OpenSSL API at test
 * time (no key is ever committed): EC P-256, valid for a day, SANs DNS:localhost and
 * IP:127.0.0.1, in a fresh mkdtemp directory. */
#ifndef NUDGE_TEST_CERT_H
#define NUDGE_TEST_CERT_H

struct cert {
    char dir[64];    /* the mkdtemp directory holding the files */
    char cert[128];  /* dir/cert.pem: the certificate (also the CA file clients trust) */
    char key[128];   /* dir/key.pem: its private key */
    char other[128]; /* dir/other.pem: a second key that matches no certificate */
};

/* Make the directory and the three files. 0, or -1 (nothing left behind). */
int cert_make(struct cert *c);
/* Remove the files and the directory. */
void cert_remove(struct cert *c);

#endif
