import { createReferenceKernels } from './reference';
import { describeExecutor } from '../describe-executor';
describeExecutor('mutant', async () => createReferenceKernels());
