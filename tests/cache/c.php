<?php
// t_cache.py's backend: counts its requests per id (a file per id, under
// flock), answers with the headers the query asks for.
$id = preg_replace('/[^A-Za-z0-9_-]/', '', $_GET['id'] ?? 'x');
$fp = fopen(__DIR__ . '/counts/' . $id, 'c+');
flock($fp, LOCK_EX);
$n = (int)stream_get_contents($fp) + 1;
ftruncate($fp, 0);
rewind($fp);
fwrite($fp, (string)$n);
fflush($fp);
flock($fp, LOCK_UN);
fclose($fp);
if (isset($_GET['sleep'])) usleep((int)$_GET['sleep'] * 1000);
// reval: answer 304 to the cache's own validators (ETag or Last-Modified)
if (isset($_GET['reval']) &&
    ((isset($_GET['etag']) && ($_SERVER['HTTP_IF_NONE_MATCH'] ?? '') === '"' . $_GET['etag'] . '"') ||
     (!isset($_GET['etag']) && ($_SERVER['HTTP_IF_MODIFIED_SINCE'] ?? '') === 'Sat, 01 Jan 2022 00:00:00 GMT'))) {
    http_response_code(304);
    if (isset($_GET['cc304'])) header('Cache-Control: ' . $_GET['cc304']);
    exit;
}
if (isset($_GET['st'])) http_response_code((int)$_GET['st']);
if (isset($_GET['cc'])) header('Cache-Control: ' . $_GET['cc']);
// cc2: the Cache-Control of the second answer on (a refresh that must stay
// fresh while a test looks at it, whatever the machine's speed)
if (isset($_GET['cc2']) && $n >= 2) header('Cache-Control: ' . $_GET['cc2']);
if (isset($_GET['exp'])) header('Expires: ' . gmdate('D, d M Y H:i:s', time() + (int)$_GET['exp']) . ' GMT');
if (isset($_GET['cookie'])) setcookie('s', 'v');
if (isset($_GET['vary'])) header('Vary: ' . $_GET['vary']);
if (isset($_GET['etag'])) header('ETag: "' . $_GET['etag'] . '"');
if (file_exists(__DIR__ . '/counts/' . $id . '.down')) { http_response_code(503); echo "down\n"; exit; }
header('Last-Modified: Sat, 01 Jan 2022 00:00:00 GMT');
header('Content-Type: text/plain');
header('X-Backend: php');
$lang = $_SERVER['HTTP_ACCEPT_LANGUAGE'] ?? '';
echo "n=$n id=$id lang=$lang\n";
$size = (int)($_GET['size'] ?? 0);
$slow = (int)($_GET['slow'] ?? 0);
for ($i = 0; $i < $size; $i += 8192) {
    echo str_repeat(chr(97 + ($i / 8192) % 26), min(8192, $size - $i));
    flush();
    if ($slow) usleep($slow * 1000);
}
