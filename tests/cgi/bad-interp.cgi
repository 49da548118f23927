#!/nonexistent/interp
this script's interpreter does not exist: exec fails with ENOENT
