<?php
// index.php: the directory index, served by PHP for "/" and "/dir/".
header('Content-Type: text/plain');
echo 'index.php SCRIPT_NAME=', $_SERVER['SCRIPT_NAME'],
    ' PATH_INFO=', $_SERVER['PATH_INFO'] ?? '', "\n";
