#ifndef PT_X
#define PT_X
#endif
