build/src/req.o: src/req.c src/req.h src/buf.h src/errors.h src/common.h \
 src/config.h src/log.h
src/req.h:
src/buf.h:
src/errors.h:
src/common.h:
src/config.h:
src/log.h:
