#!/bin/bash
# real-perl: Debian's perl (which uses the system malloc) under fbmalloc.
#
# Proves that perl gives byte-identical output with and without
# LD_PRELOAD=libfbmalloc.so and takes the fast path (fast_mallocs > 0,
# bad_frees == 0), over ~100k items of: hash inserts/deletes/rebuilds,
# regex matches with captures and substitutions, split/join, sprintf, and
# sorts (numeric, string, and Schwartzian transform), all printed in a
# deterministic order.  Perl allocates every SV body, string buffer and hash
# bucket array with malloc, so this is a heavy mix of small, short-lived and
# growing (realloc) blocks.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need perl perl

cat >"$FB_IN/work.pl" <<'EOF'
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $N = shift // 100000;
my $x = 12345;
sub rnd { $x = ($x * 1103515245 + 12345) % 2147483648; return $x; }

# hashes
my %h;
my @items;
for my $i (0 .. $N - 1) {
    my $r = rnd();
    my $key = sprintf("k%06d-%s", $r % 70001, join("", map { chr(97 + ($r >> $_) % 26) } 0 .. 5));
    my $val = sprintf("%08x:%.3f:%s", $r, $r / 7.0, "x" x ($r % 40));
    $h{$key} .= $val;
    push @items, "$key $val";
}
delete $h{$_} for grep { /[aeiou]{2}/ } keys %h;
my %inv;
while (my ($k, $v) = each %h) { push @{ $inv{ length $v } }, $k; }
print "hash ", scalar(keys %h), " ", scalar(keys %inv), " ",
      md5_hex(join ",", map { "$_=$h{$_}" } sort keys %h), "\n";

# regexes: captures, substitutions, split/join
my ($m, $sum, %first) = (0, 0);
for (@items) {
    if (/^k(\d+)-([a-z]+)\s+([0-9a-f]{8}):(\d+)\.(\d+):(x*)$/) {
        $m++;
        $sum += $1 + length($6);
        $first{ substr($2, 0, 2) }++;
    }
    (my $t = $_) =~ s/([aeiou])/uc($1) x 2/ge;
    $t =~ tr/0-9/a-j/;
    my @f = split /[:\s-]+/, $t;
    $_ = join "|", reverse @f;
}
print "regex $m $sum ", scalar(keys %first), " ", md5_hex(join "\n", @items), "\n";

# sorts
my @nums = map { rnd() % 1000003 } 1 .. $N;
my @sn = sort { $a <=> $b } @nums;
my @ss = sort @items;
my @st = map { $_->[1] } sort { $a->[0] <=> $b->[0] or $a->[1] cmp $b->[1] }
         map { [ length($_), $_ ] } @items;
print "sort $sn[0] $sn[-1] $sn[$N / 2] ", md5_hex("@sn"), " ", md5_hex(join "", @ss),
      " ", md5_hex(join "", @st), "\n";

# sprintf-heavy report, sorted
my @lines = map { sprintf("%-12s %6d %10.4f %s", substr($_, 0, 12), length($_), length($_) / 3, substr(md5_hex($_), 0, 8)) } @st[0 .. 9999];
print "$_\n" for (sort @lines)[0 .. 29];
printf "%s %d\n", $_, $first{$_} for (sort { $first{$b} <=> $first{$a} or $a cmp $b } keys %first)[0 .. 19];
EOF

workload() {
    PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 fb perl "$FB_IN/work.pl" 100000
}
FB_MIN_STATS=1
# Also under leak tracking and under checking + canaries (see common.sh).
FB_EXTRA_MODES=(leaks check)
fb_main
