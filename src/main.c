#include "first.h"
int main(void)
{
    return 0;
}
