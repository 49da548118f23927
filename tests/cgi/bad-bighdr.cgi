#!/usr/bin/perl
# bad-bighdr.cgi: a header block of about 100 kB (over limits.gw_header_max).
print "Content-Type: text/plain\n";
print "X-Big-$_: " . ('a' x 1000) . "\n" for 1 .. 100;
print "\nbody\n";
