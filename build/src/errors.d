build/src/errors.o: src/errors.c src/errors.h src/common.h
src/errors.h:
src/common.h:
