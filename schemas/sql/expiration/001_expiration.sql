-- The expiration context keeps no state in PostgreSQL (DESIGN.md section 7: what it cannot decode
-- goes to the topic expiration.deadletter); its database tk_expiration holds only the common
-- tables. This file gives the context its folder, which is how `ticketing migrate` knows to create
-- and migrate that database: migrate lists the contexts from the folders of schemas/sql/.
SELECT 1;
