build/src/sse.o: src/sse.c src/sse.h src/buf.h src/common.h
src/sse.h:
src/buf.h:
src/common.h:
