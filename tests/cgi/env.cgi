#!/usr/bin/perl
# env.cgi: reports what the gateway handed over: every environment variable
# (NUL-separated NAME=VALUE), the working directory and the request body read
# on stdin (until EOF, only when CONTENT_LENGTH is set), as ".name=value".
binmode STDIN;
binmode STDOUT;
my ($n, $sum, $buf) = (0, 0);
if (defined $ENV{CONTENT_LENGTH}) {
    while (1) {
        my $r = sysread(STDIN, $buf, 65536);
        last unless $r;
        $n += $r;
        $sum = ($sum + unpack('%32C*', $buf)) % 4294967296;
    }
}
my $cwd = readlink('/proc/self/cwd') // '';
my $out = '';
$out .= "$_=$ENV{$_}\0" for sort keys %ENV;
$out .= ".cwd=$cwd\0.body_len=$n\0.body_sum=$sum\0.pid=$$\0";
print "Content-Type: application/octet-stream\r\n";
print "Content-Length: " . length($out) . "\r\n\r\n";
print $out;
