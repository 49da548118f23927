#!/usr/bin/perl
# big.cgi?TAG&MB[&nobuf]: writes MB megabytes of a fixed pattern as fast as
# it can, then creates run/TAG.done. "nobuf" adds X-Accel-Buffering: no.
binmode STDOUT;
my ($tag, $mb, $nobuf) = split /&/, ($ENV{QUERY_STRING} // '');
my $dir = ($0 =~ m{^(.*)/}) ? $1 : '.';
my $blk = join('', map { chr($_ % 251) } 0 .. 65535);
my $hdr = "Content-Type: application/octet-stream\r\n";
$hdr .= "X-Accel-Buffering: no\r\n" if defined $nobuf && $nobuf eq 'nobuf';
syswrite(STDOUT, "$hdr\r\n");
for (1 .. $mb * 16) {
    my $off = 0;
    while ($off < length $blk) {
        my $w = syswrite(STDOUT, $blk, length($blk) - $off, $off);
        exit 1 unless defined $w;
        $off += $w;
    }
}
close STDOUT;
open(my $f, '>', "$dir/run/$tag.done") or die "$dir/run/$tag.done: $!";
close $f;
