build/src/config.o: src/config.c src/config.h src/buf.h src/common.h \
 src/../providers/provider.h src/../providers/../src/config.h \
 src/../providers/../src/buf.h src/../providers/../src/errors.h
src/config.h:
src/buf.h:
src/common.h:
src/../providers/provider.h:
src/../providers/../src/config.h:
src/../providers/../src/buf.h:
src/../providers/../src/errors.h:
