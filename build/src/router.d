build/src/router.o: src/router.c src/router.h src/config.h src/errors.h \
 src/buf.h src/common.h
src/router.h:
src/config.h:
src/errors.h:
src/buf.h:
src/common.h:
