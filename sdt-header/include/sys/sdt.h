/* `-I .../sdt-header/include` makes `#include <sys/sdt.h>` find stap-sdt's
   header (the include guard is shared with SystemTap's). */
#include "../sdt.h"
