build/src/models.o: src/models.c src/models.h src/buf.h src/common.h \
 src/config.h src/log.h src/loop.h src/req.h src/errors.h src/upstream.h \
 src/../providers/provider.h src/../providers/../src/config.h \
 src/../providers/../src/buf.h src/../providers/../src/errors.h
src/models.h:
src/buf.h:
src/common.h:
src/config.h:
src/log.h:
src/loop.h:
src/req.h:
src/errors.h:
src/upstream.h:
src/../providers/provider.h:
src/../providers/../src/config.h:
src/../providers/../src/buf.h:
src/../providers/../src/errors.h:
