/* libFuzzer target for broker/engine/journal.c recovery. The input is the bytes of one segment
 * file (segment 1, in a directory under /dev/shm, emptied for each input). The first byte picks
 * how: bit 0 set, the rest is the whole file (header and size checks); else a valid 64 KiB
 * header is put before the rest, zero-padded to 64 KiB; bit 1 set, the CRC of every frame the
 * body seems to hold is made right first, so that the fuzzer reaches sequences of valid records
 * and what follows them. Then: every record reported must carry a correct CRC (checked with a
 * bitwise reference, not journal.c's tables) at increasing positions; a second open must report
 * the same records and cut nothing (the first cut for good); a record appended after it must
 * come back after a third open, after the same records. Self-contained: the Makefile's fuzz rule
 * links protocol/ only, so journal.c is included here. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../broker/engine/journal.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_journal: %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { SEG = 64 << 10, MAXREC = 8192 };

static uint32_t ref_crc(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

struct rec {
    journal_pos pos;
    uint32_t len, sum;
    uint8_t type;
};

struct seen {
    struct rec r[MAXREC];
    size_t n;
    int overflow;
};

static void on_rec(void *arg, journal_pos pos, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct seen *s = arg;
    /* The frame is in the file; the callback sees its payload: recompute the CRC the way the
     * format defines it (over the len word, the type and the payload). */
    uint8_t lw[4] = {(uint8_t)(len + 1), (uint8_t)((len + 1) >> 8), (uint8_t)((len + 1) >> 16),
                     (uint8_t)((len + 1) >> 24)};
    uint32_t crc = ref_crc(ref_crc(ref_crc(0, lw, 4), &type, 1), p, len);
    const uint8_t *frame = p - FRAME; /* recovery hands out pointers into the mapped segment */
    CHECK(get32(frame + 4) == crc);
    CHECK(type != 0);
    CHECK(!s->n || pos > s->r[s->n - 1].pos);
    if (s->n == MAXREC) {
        s->overflow = 1;
        return;
    }
    s->r[s->n++] = (struct rec){pos, len, ref_crc(0, p, len), type};
}

static char dir[64];

static void clear_dir(void)
{
    static const char *fixed[] = {"CLEAN", "LOCK"};
    char name[128];
    for (size_t i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "%s/%s", dir, fixed[i]);
        unlink(name);
    }
    for (uint64_t n = 1; n < 8; n++) {
        snprintf(name, sizeof(name), "%s/%016llx.seg", dir, (unsigned long long)n);
        unlink(name);
    }
}

static void write_file(const uint8_t *p, size_t n)
{
    char name[128];
    snprintf(name, sizeof(name), "%s/%016llx.seg", dir, 1ull);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
    close(fd);
}

static void fix_crcs(uint8_t *seg)
{
    uint64_t off = HDR;
    while (off + 8 <= SEG) {
        uint32_t len = get32(seg + off);
        if (!len || len > SEG - off - 8) break;
        put32(seg + off + 4, frame_crc(seg + off, len));
        off += align8(8 + (uint64_t)len);
    }
}

static void cleanup(void)
{
    clear_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct seen a, b;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/dev/shm/nudge-fuzz-journal-%d", (int)getpid());
        mkdir(dir, 0700);
        atexit(cleanup);
    }
    if (size < 1) return 0;
    clear_dir();
    uint8_t mode = data[0];
    data++, size--;
    if (mode & 1) {
        write_file(data, size);
    } else {
        static uint8_t seg[SEG];
        memset(seg, 0, sizeof(seg));
        header_encode(seg, 1, SEG);
        memcpy(seg + HDR, data, size < SEG - HDR ? size : SEG - HDR);
        if (mode & 2) fix_crcs(seg);
        write_file(seg, SEG);
    }

    struct journal_config c;
    journal_config_default(&c);
    c.dir = dir;
    c.segment_bytes = SEG;
    c.sync = JOURNAL_SYNC_OS;
    struct journal *j = NULL;
    a.n = b.n = 0;
    a.overflow = b.overflow = 0;
    CHECK(journal_open(&c, on_rec, &a, NULL, NULL, &j) == 0);
    journal_close(j);

    CHECK(journal_open(&c, on_rec, &b, NULL, NULL, &j) == 0);
    struct journal_stats st;
    journal_stats(j, &st);
    CHECK(st.cut_bytes == 0);
    CHECK(b.n == a.n && !memcmp(a.r, b.r, a.n * sizeof(a.r[0])));
    static const uint8_t mine[5] = "mine";
    journal_pos pos;
    CHECK(journal_append(j, 42, mine, sizeof(mine), &pos) == 0);
    CHECK(!a.n || pos > a.r[a.n - 1].pos);
    journal_close(j);

    b.n = 0;
    CHECK(journal_open(&c, on_rec, &b, NULL, NULL, &j) == 0);
    journal_stats(j, &st);
    CHECK(st.cut_bytes == 0);
    CHECK(b.n == a.n + 1 && !memcmp(a.r, b.r, a.n * sizeof(a.r[0])));
    CHECK(b.r[a.n].pos == pos && b.r[a.n].type == 42 && b.r[a.n].len == sizeof(mine));
    journal_close(j);
    return 0;
}
