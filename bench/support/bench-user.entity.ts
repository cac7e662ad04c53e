import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { knoxTokenEntity } from 'nestjs-knox';

/** The user entity of the benchmark app. Passwords are compared as given, as in the tests. */
@Entity('bench_user')
export class BenchUser {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'varchar', length: 150, unique: true })
  username: string;

  @Column({ type: 'varchar', length: 200 })
  password: string;

  @Column({ type: 'boolean', default: true })
  isActive: boolean;
}

/** The bench's own token table, so that it never touches the tables of the tests. */
export const BENCH_TOKEN_TABLE = 'knox_bench_authtoken';

/** The token entity KnoxModule registers for `{ userEntity: BenchUser, tableName: BENCH_TOKEN_TABLE }`. */
export const BenchToken = knoxTokenEntity(BenchUser, BENCH_TOKEN_TABLE);

/** The table of the scale figure: the same 1 000 tokens plus 1 000 000 expired rows. */
export const BENCH_LARGE_TABLE = 'knox_bench_large_authtoken';
