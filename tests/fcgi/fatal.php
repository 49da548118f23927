<?php
// fatal.php: a fatal error (undefined function) before any output; with
// display_errors off PHP answers 500 and logs the error on FCGI_STDERR.
header('Content-Type: text/plain');
portico_this_function_does_not_exist();
echo "not reached\n";
