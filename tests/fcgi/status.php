<?php
// status.php: a status chosen by the script.
//   ?code=418            http_response_code(418) (FPM adds its own reason)
//   ?line=299&reason=... header("HTTP/1.1 299 ...") with a custom reason
header('Content-Type: text/plain');
if (isset($_GET['line'])) {
    $reason = $_GET['reason'] ?? 'Custom Reason';
    header(sprintf('HTTP/1.1 %d %s', (int)$_GET['line'], $reason));
    echo 'status line ', (int)$_GET['line'], ' ', $reason, "\n";
} else {
    $code = (int)($_GET['code'] ?? 418);
    http_response_code($code);
    echo 'status code ', $code, "\n";
}
