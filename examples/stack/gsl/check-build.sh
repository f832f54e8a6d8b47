#!/bin/sh
# The full make check takes longer than the build; a program against the installed library instead.
set -e
cat > "$WORKSPACE/gslcheck.c" <<'C'
#include <stdio.h>
#include <math.h>
#include <gsl/gsl_sf_bessel.h>
int main(void) {
    double y = gsl_sf_bessel_J0(5.0);
    printf("J0(5) = %.18e\n", y);
    return fabs(y - (-1.775967713143382920e-01)) < 1e-15 ? 0 : 1;
}
C
cc -I"$SOFT_DIR/include" "$WORKSPACE/gslcheck.c" -L"$SOFT_DIR/lib" -lgsl -lgslcblas -lm -o "$WORKSPACE/gslcheck"
LD_LIBRARY_PATH="$SOFT_DIR/lib" "$WORKSPACE/gslcheck"
