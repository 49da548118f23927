<?php
// stderr.php?tag=X: error_log() without an error_log file goes to FCGI_STDERR
// (fastcgi.logging); the body must not contain it.
$tag = preg_replace('/[^A-Za-z0-9_-]/', '', $_GET['tag'] ?? 'none');
error_log('marker ' . $tag . ' from stderr.php');
header('Content-Type: text/plain');
echo "body of stderr.php\n";
