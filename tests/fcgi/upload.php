<?php
// upload.php: multipart/form-data -> name, size, sha256 of every file PHP
// stored (and the form fields); any other body -> length and sha256 of
// php://input. Both with the CONTENT_LENGTH PHP was given.
header('Content-Type: application/json');
$out = [
    'method' => $_SERVER['REQUEST_METHOD'],
    'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null,
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? null,
];
if (stripos($out['content_type'] ?? '', 'multipart/form-data') === 0) {
    $files = [];
    foreach ($_FILES as $field => $f) {
        $files[] = [
            'field' => $field,
            'name' => $f['name'],
            'error' => $f['error'],
            'size' => $f['size'],
            'sha256' => $f['error'] === UPLOAD_ERR_OK ? hash_file('sha256', $f['tmp_name']) : null,
        ];
    }
    $out['files'] = $files;
    $out['fields'] = $_POST;
} else {
    $body = file_get_contents('php://input');
    $out['body_len'] = strlen($body);
    $out['body_sha256'] = hash('sha256', $body);
}
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
