<?php
// hello.php: the smallest answer; the method and raw query say who was asked.
header('Content-Type: text/plain');
echo 'hello from php-fpm ', $_SERVER['REQUEST_METHOD'], ' ', $_SERVER['QUERY_STRING'] ?? '';
