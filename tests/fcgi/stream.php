<?php
// stream.php?n=N&gate=NAME: server-sent events with "X-Accel-Buffering: no".
// Event 1 is flushed, then the script waits (at most 60 s) for the file
// run/NAME next to it to exist before it sends events 2..N: a client that
// sees event 1 before it creates the file proves the gateway streamed it.
$n = max(1, min(100, (int)($_GET['n'] ?? 3)));
$gate = preg_replace('/[^A-Za-z0-9_-]/', '', $_GET['gate'] ?? '');
header('Content-Type: text/event-stream');
header('Cache-Control: no-cache');
header('X-Accel-Buffering: no');
for ($i = 1; $i <= $n; $i++) {
    echo "id: $i\ndata: event $i\n\n";
    flush();
    if ($i === 1 && $gate !== '') {
        $path = __DIR__ . '/run/' . $gate;
        for ($t = 0; $t < 3000 && !file_exists($path); $t++) {
            usleep(20000);
            clearstatcache();
        }
    }
}
