/*
 * The pprof writer's gzip stream (src/pprof.c): stored deflate blocks
 * across the 65,535-byte block limit, CRC-32 and length trailer, checked
 * by the real gzip (gzip -dc must give the bytes back), and CRC-32 against
 * its standard check value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "pprof.h"

static struct fb_gz z;

int main(void)
{
    CHECK_EQ_U(fb_gz_crc32(0, "123456789", 9), 0xcbf43926u);
    char path[] = "/tmp/fbgzXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    static unsigned char data[200000];
    unsigned x = 1;
    for (size_t i = 0; i < sizeof data; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    fb_gz_begin(&z, fd);
    /* uneven pieces, one exactly filling a block */
    fb_gz_write(&z, data, 1);
    fb_gz_write(&z, data + 1, 65534);
    fb_gz_write(&z, data + 65535, 100000);
    fb_gz_write(&z, data + 165535, sizeof data - 165535);
    CHECK_EQ_U(fb_gz_end(&z), 0);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "gzip -dc %s", path);
    FILE *p = popen(cmd, "r");
    static unsigned char back[sizeof data + 10];
    size_t n = fread(back, 1, sizeof back, p);
    CHECK_EQ_U(pclose(p), 0);
    CHECK_EQ_U(n, sizeof data);
    CHECK(memcmp(back, data, sizeof data) == 0);
    snprintf(cmd, sizeof cmd, "gzip -t %s", path);
    CHECK_EQ_U(system(cmd), 0);
    /* an empty stream is valid too */
    fd = open(path, O_WRONLY | O_TRUNC);
    fb_gz_begin(&z, fd);
    CHECK_EQ_U(fb_gz_end(&z), 0);
    close(fd);
    CHECK_EQ_U(system(cmd), 0);
    unlink(path);
    return check_done("pprof");
}
