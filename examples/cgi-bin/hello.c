/* The smallest useful CGI program: build with `make` (or
 * `cc -O2 -o hello hello.c`) and put the binary in the cgi root. */
#include <stdio.h>

int main(void)
{
	static const char resp[] =
		"Content-Type: text/plain\r\n"
		"\r\n"
		"Hello, world!\n";
	fwrite(resp, 1, sizeof resp - 1, stdout);
	return 0;
}
