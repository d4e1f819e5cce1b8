/* main.c - placeholder while the subcommands land. */
int main(void)
{
    return 0;
}
