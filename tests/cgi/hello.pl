#!/usr/bin/perl
# hello.pl: a Perl CGI that reads its body (CONTENT_LENGTH bytes).
use strict;
use warnings;
binmode STDIN;
my $body = '';
read(STDIN, $body, $ENV{CONTENT_LENGTH}) if $ENV{CONTENT_LENGTH};
print "Content-Type: text/plain\n\n";
printf "hello from perl: %s %s %d\n", $ENV{REQUEST_METHOD}, $ENV{QUERY_STRING}, length $body;
