<?php
// sleep.php?ms=N&id=X: waits N ms (to hold an FPM child), then answers with
// the id and the child's pid.
$ms = max(0, min(30000, (int)($_GET['ms'] ?? 100)));
usleep($ms * 1000);
header('Content-Type: text/plain');
echo 'slept ', $ms, ' id=', $_GET['id'] ?? '', ' pid=', getmypid(), "\n";
