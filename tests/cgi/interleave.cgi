#!/usr/bin/perl
# interleave.cgi: echoes the body while still reading it (64k in, 64k out),
# so a gateway that writes the whole body before reading output deadlocks.
binmode STDIN;
binmode STDOUT;
$| = 1;
print "Content-Type: application/octet-stream\r\n\r\n";
my $buf;
while (1) {
    my $r = sysread(STDIN, $buf, 65536);
    last unless $r;
    my $off = 0;
    while ($off < $r) {
        my $w = syswrite(STDOUT, $buf, $r - $off, $off);
        die "write: $!" unless defined $w;
        $off += $w;
    }
}
