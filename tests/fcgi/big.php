<?php
// big.php?mb=N: N MiB of a known pattern (bytes i % 251 in 64 KiB blocks),
// written block by block with flush() so FPM sends many FCGI_STDOUT records.
// &nobuf=1 adds "X-Accel-Buffering: no" (the response is streamed).
// &done=NAME creates run/NAME once every byte was handed to the gateway.
$mb = max(0, min(256, (int)($_GET['mb'] ?? 8)));
$done = preg_replace('/[^A-Za-z0-9_-]/', '', $_GET['done'] ?? '');
header('Content-Type: application/octet-stream');
if (!empty($_GET['nobuf'])) {
    header('X-Accel-Buffering: no');
}
$block = '';
for ($i = 0; $i < 65536; $i++) {
    $block .= chr($i % 251);
}
for ($i = 0; $i < $mb * 16; $i++) {
    echo $block;
    flush();
}
if ($done !== '' && !connection_aborted()) {
    touch(__DIR__ . '/run/' . $done);
}
