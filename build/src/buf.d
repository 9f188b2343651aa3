build/src/buf.o: src/buf.c src/buf.h src/common.h
src/buf.h:
src/common.h:
