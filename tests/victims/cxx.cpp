// SPDX-License-Identifier: MIT
// operator new/delete, std::vector and std::string point at user lines.
#include <cstdio>
#include <string>
#include <vector>

struct Foo {
	char data[48];
};

static std::vector<int *> arrays;
static std::vector<Foo *> objs;

int main()
{
	arrays.reserve(40);
	objs.reserve(10);
	for (int i = 0; i < 40; i++) {
		int *a = new int[25]; // @arr
		arrays.push_back(a);
	}
	for (int i = 0; i < 10; i++) {
		Foo *f = new Foo(); // @obj
		objs.push_back(f);
	}
	for (int i = 0; i < 5; i++)
		delete objs[i];
	std::vector<int> *v = new std::vector<int>;
	v->reserve(1000); // @vec
	std::string *s = new std::string(200, 'x'); // @str
	std::printf("cxx ok %zu %zu\n", v->capacity(), s->size());
	return 0;
}
