<?php
// env.php: what the gateway passed, as JSON: every FastCGI param ($_SERVER),
// the request headers PHP rebuilt from them, and the body PHP received.
header('Content-Type: application/json');
$body = file_get_contents('php://input');
echo json_encode([
    'server' => $_SERVER,
    'headers' => function_exists('getallheaders') ? getallheaders() : null,
    'get' => $_GET,
    'body_len' => strlen($body),
    'body_sha256' => hash('sha256', $body),
    'cwd' => getcwd(),
], JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PRETTY_PRINT), "\n";
