<?php echo "ok ".$_SERVER["REQUEST_METHOD"]." ".$_SERVER["QUERY_STRING"]; ?>
