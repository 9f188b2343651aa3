build/src/upstream.o: src/upstream.c src/upstream.h src/common.h \
 src/log.h src/loop.h src/../providers/provider.h \
 src/../providers/../src/config.h src/../providers/../src/buf.h \
 src/../providers/../src/errors.h
src/upstream.h:
src/common.h:
src/log.h:
src/loop.h:
src/../providers/provider.h:
src/../providers/../src/config.h:
src/../providers/../src/buf.h:
src/../providers/../src/errors.h:
