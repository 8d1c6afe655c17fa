//@ tag: cxx
//@ desc: a std::vector<int> of 100 and a std::map of 10 kept in globals are reachable; a leaked Node (new) owns a std::vector buffer (indirect) and a long std::string (indirect)
//@ intent: definitely=56/1 indirectly=136/2 records=3
#include <map>
#include <string>
#include <vector>

struct Node {
    std::vector<int> v;
    std::string s;
};

std::vector<int> *g_vec;
std::map<int, int> *g_map;
static void *volatile sink;

__attribute__((noinline)) static void leak_node()
{
    Node *n = new Node;
    n->v.resize(16);
    n->s.assign(71, 'x');
    sink = n;
    sink = nullptr;
}

int main()
{
    g_vec = new std::vector<int>(100);
    g_map = new std::map<int, int>;
    for (int i = 0; i < 10; i++)
        (*g_map)[i] = i;
    leak_node();
    return 0;
}
