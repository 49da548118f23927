<?php
// cookies.php: two Set-Cookie fields that must both reach the client.
setcookie('first', 'one', ['path' => '/']);
setcookie('second', 'two', ['path' => '/', 'httponly' => true]);
header('Content-Type: text/plain');
echo "two cookies\n";
